"""VerificationMachine: one verification's state and every change to it, without Temporal.

VerificationWorkflow holds one and issues the commands around it (activities, timers,
search-attribute upserts, patch markers); every decision that needs no command is made
here, with the smaller helpers: StepPlan (the plan's progression), ResendGate (sends and
cooldown), ReceiptBuffer (receipts before their send), Failover (a delivery's provider
tries), EventLog and outcomes (endings and refusals).

Rules:
- `wake` is raised by every change the run loop must look at: an end, a settled
  delivery, an applied receipt, a next-channel call. The loop lowers it before it waits.
- A verification ends once; its end is noted with the step it reached.
- A delivery counts its send and (on the current step) restarts the step's timer before
  it is tried; a refused resend puts both back.
- Receipts are applied whenever their delivery is known: at once, or when the send's
  result arrives. A failed one on the current, sent step falls back at once.
- Deterministic and sandbox-safe: the standard library, temporalio and otp.domain only;
  the caller passes the time in.
"""

from __future__ import annotations

from datetime import datetime

from temporalio.exceptions import ActivityError, ApplicationError

import workflows.delivery as delivery
import workflows.outcomes as outcomes
import workflows.receipts as receipts
from otp.domain import (
    CheckResult,
    DeliverResult,
    DeliveryAttempt,
    DeliveryKind,
    DeliveryReceiptInput,
    DeliveryStatus,
    ScopedInput,
    Status,
    VerificationInput,
    VerificationState,
)
from workflows.event_log import EventLog
from workflows.resend import ResendGate, ResendSnapshot, refusal_error
from workflows.steps import StepPlan, StepSnapshot

Before = tuple[ResendSnapshot, StepSnapshot]


class VerificationMachine:
    """The state (what the `state` query answers), the plan, the send counters, the held
    receipts and the event log of one verification."""

    def __init__(self, input: VerificationInput, created: datetime) -> None:
        self.input = input
        self.state = VerificationState.initial(input, created)
        self.plan = StepPlan(input.channels, self.state)
        self.resends = ResendGate(
            self.state, cooldown_s=input.resend_cooldown_s, backoff=input.resend_backoff
        )
        self.receipts = receipts.ReceiptBuffer()
        # State changes for the event log, written in one batch when the run ends.
        self.log = EventLog(created, input.channels[0].channel if input.channels else None)
        self.digest: str | None = None
        self.nonce: str | None = None
        self.refusal: delivery.Refusal | None = None  # the last risk refusal of a send
        self.wake = False

    @property
    def terminal(self) -> bool:
        return self.state.status.is_terminal

    def issued(self, digest: str, nonce: str) -> None:
        """The code is issued: its keyed digest and the nonce activities derive it from."""
        self.digest, self.nonce = digest, nonce
        self.state.code_issued = True

    def finish(self, status: Status, reason: str, now: datetime) -> None:
        """End the verification (if it has not ended) and note it."""
        if not outcomes.finish(self.state, status, reason, now):
            return
        self.wake = True
        self.log.terminal(status, self.plan.reached, self.plan.reached_channel, reason, now)

    def expire_if_due(self, now: datetime) -> None:
        if now >= self.state.expires_at:
            self.finish(Status.EXPIRED, outcomes.EXPIRED, now)

    def advance(self, index: int, reason: str, now: datetime) -> bool:
        """Move the plan to step `index`; True when that is a step (its fallback is noted)."""
        step = self.plan.advance(index)
        if step is None:
            return False
        self.log.fallback(index, step.channel, reason, now)
        return True

    # ------------------------------------------------------------- delivery
    def start_delivery(
        self, index: int, kind: DeliveryKind, started: datetime, run: tuple[str, str]
    ) -> tuple[Before, delivery.Failover]:
        """A delivery on step `index` starts: count it, restart the step's timer; what to
        put back if it is refused, and its walk through the step's providers."""
        before = (self.resends.snapshot(), self.plan.snapshot())
        self.resends.count(kind, started)
        self.plan.sending(index, started)
        if self.nonce is None:
            raise ApplicationError("no code was issued yet", type="CodeNotIssued")
        step_end = self.plan.step_end(index, started)
        return before, delivery.Failover(
            self.input, self.state, index, kind, step_end=step_end, nonce=self.nonce, run=run
        )

    def sent(self, attempt: DeliveryAttempt, result: DeliverResult, now: datetime) -> None:
        """A try's activity succeeded; a receipt that overtook it is applied now."""
        delivery.succeeded(attempt, result)
        self.log.sent(attempt, now)
        if (early := self.receipts.take(attempt)) is not None:
            self._apply(attempt, early, now)
        attempt.updated_at = now

    def failed(self, attempt: DeliveryAttempt, err: ActivityError, now: datetime) -> None:
        """A try's activity failed for good (a risk refusal's details are kept)."""
        if (refusal := delivery.failed(attempt, err)) is not None:
            self.refusal = refusal
        self.log.send_failed(attempt, now)
        attempt.updated_at = now

    def block(self, now: datetime) -> None:
        """A risk control refused a send: the verification ends `blocked`."""
        reason = self.refusal.reason if self.refusal else None
        self.finish(Status.BLOCKED, reason or outcomes.BLOCKED, now)

    def refuse_resend(
        self, before: Before, attempt: DeliveryAttempt, now: datetime
    ) -> ApplicationError:
        """A risk control refused a resend: put the sends, the cooldown and the step's timer
        back; the failure to answer the resend with. The verification stays pending with
        the same code; the refused try stays in `deliveries` (failed, `Blocked`) and in the
        event log, and a later block or limit of the step's own sends still ends it."""
        refusal, self.refusal = self.refusal, None
        self.resends.restore(before[0])
        self.plan.restore(before[1])
        attempt.updated_at = now
        return refusal_error(refusal)

    def delivered(self, index: int, kind: DeliveryKind, final: DeliveryAttempt) -> None:
        """A delivery is over: a step's own that failed on every provider falls back."""
        if final.status is DeliveryStatus.FAILED and kind is DeliveryKind.STEP:
            self.plan.send_failed(index)
        self.wake = True

    # -------------------------------------------------------------- receipts
    def receipt(self, receipt: DeliveryReceiptInput, now: datetime) -> None:
        """A provider's receipt: applied to its delivery, or held until that is known."""
        attempt = self.receipts.route(self.state.deliveries, receipt)
        if attempt is not None:
            self._apply(attempt, receipt, now)

    def _apply(
        self, attempt: DeliveryAttempt, receipt: DeliveryReceiptInput, now: datetime
    ) -> None:
        applied = receipts.apply(attempt, receipt, now)
        if applied is None:
            return
        self.log.receipt(attempt, applied, now)
        if applied is DeliveryStatus.FAILED:
            self.plan.receipt_failed(attempt.step_index)
        self.wake = True

    # ------------------------------------------------------- checks, guards
    def check(self, *, matched: bool, now: datetime) -> CheckResult:
        """Count a check of the issued code (`matched`: its digest was the code's)."""
        self.state.attempts_used += 1
        if not matched:
            self.log.check_failed(self.state.attempts_used, now)
        if (ending := outcomes.after_check(self.state, matched=matched)) is not None:
            self.finish(*ending, now)
        return outcomes.check_result(self.state, matched=matched)

    def reason_code(self) -> str:
        return outcomes.reason_code(self.state.status, self.refusal.code if self.refusal else None)

    def require_resend(self, input: ScopedInput, now: datetime, *, sending: bool) -> None:
        """Refuse a resend now (`sending`: a delivery is in flight)."""
        outcomes.require_caller(self.state, input)
        self.resends.require_allowed(now, busy=sending or self.plan.step_unsent)

    def require_next(self, input: ScopedInput) -> None:
        outcomes.require_caller(self.state, input)
        self.plan.require_next()
