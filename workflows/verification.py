"""VerificationWorkflow: one verification, from code issue to a terminal status.

Deterministic: no I/O, no environment, no clock but workflow.now(). The plaintext
code never enters this workflow; it holds only the nonce that activities derive the
code from and the keyed digest that submitted codes are compared with.

This file issues the commands (activities, timers, upserts, patch markers) and handles
the messages; the verification's state and every decision without a command live
beside it in machine.VerificationMachine and the helpers it is built from (steps,
resend, receipts, delivery, outcomes, event_log), tested without a server.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from otp.domain import (
        ACTIVITY_DELIVER,
        ACTIVITY_ISSUE_CODE,
        ACTIVITY_RECORD,
        CancelResult,
        CheckInput,
        CheckResult,
        DeliverResult,
        DeliveryAttempt,
        DeliveryKind,
        DeliveryReceiptInput,
        DeliveryStatus,
        ErrorType,
        IssueCodeInput,
        IssueCodeResult,
        NextChannelResult,
        RecordVerificationInput,
        RecordVerificationResult,
        ResendResult,
        ScopedInput,
        Status,
        VerificationInput,
        VerificationState,
    )
    from otp.observability import search_attributes as sa
    from otp.security.codes import digests_match

# The helpers beside this module are passed through too: pure and stateless at module
# level (tests/workflows/test_sandbox_safety.py checks both), one copy serves every run.
# Import them by full name: `from workflows import x` loads a private copy per sandbox.
with workflow.unsafe.imports_passed_through():
    import workflows.delivery as delivery
    import workflows.outcomes as outcomes
    import workflows.steps as steps
    from workflows.machine import VerificationMachine

# A delivery still in flight when the verification ends gets this long to report what
# happened (an attempt's own start-to-close timeout is at most 30 s).
_SETTLE = timedelta(seconds=30)
_SETTLE_PATCH = "settle-delivery-in-flight"
# A resend the delivery gate refuses fails its update and leaves the verification as it
# was (before: the verification ended `blocked`). Asked only when a resend is refused.
_RESEND_REFUSAL_PATCH = "resend-refusal-keeps-verification"


@workflow.defn(name="VerificationWorkflow")
class VerificationWorkflow:
    @workflow.init
    def __init__(self, input: VerificationInput) -> None:
        self._m = VerificationMachine(input, input.created_at or workflow.info().start_time)
        self._send_lock = asyncio.Lock()
        self._next_lock = asyncio.Lock()
        self._published = False  # the terminal status is in the search attributes
        # A fired timer proves its deadline has passed; see _now().
        self._not_before = workflow.now()

    # ------------------------------------------------------------------ run
    @workflow.run
    async def run(self, input: VerificationInput) -> VerificationState:
        if input.code_digest and input.code_nonce:
            # Issued by the API with the start: no activity needed.
            self._m.issued(input.code_digest, input.code_nonce)
        else:
            issued = await workflow.execute_local_activity(
                ACTIVITY_ISSUE_CODE,
                IssueCodeInput(
                    verification_id=workflow.info().workflow_id,
                    code_length=input.code_length,
                    code_type=input.code_type,
                ),
                result_type=IssueCodeResult,
                start_to_close_timeout=timedelta(seconds=10),
                summary="issue code",
            )
            self._m.issued(issued.digest, issued.nonce)

        while not self._m.terminal:
            match self._m.plan.next_move(self._now()):
                case steps.Deliver(index):
                    await self._deliver_step(index)
                case steps.Advance(index, reason):
                    self._advance(index, reason)
                case steps.Finish(status, reason):
                    self._m.finish(status, reason, self._now())
                case steps.Wait() as wait:
                    await self._wait(wait)

        if input.code_digest:
            # Runs that issue their code with an activity predate the event log batch
            # (and so replay without it). No `patched` marker: it would cost an upsert.
            await self._record()
        if not self._published:
            self._publish_end()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._m.state

    def _publish_end(self) -> None:
        """Upsert the terminal status (and last channel) once: one action per verification."""
        self._published = True
        workflow.upsert_search_attributes(
            [
                sa.STATUS.value_set(self._m.state.status.value),
                self._channel_attribute(),
                sa.REASON.value_set(self._m.reason_code()),
            ]
        )

    async def _record(self) -> None:
        """Write the record and the event log in one local activity (one action).

        Runs in the workflow task that reached the terminal status; a store outage is
        retried for an hour, then the verification completes without its record (the
        events written earlier by the API and the delivery activity remain).
        """
        try:
            await workflow.execute_local_activity(
                ACTIVITY_RECORD,
                RecordVerificationInput(
                    verification_id=workflow.info().workflow_id,
                    state=self._m.state,
                    entries=self._m.log.entries,
                    country=self._m.input.country,
                ),
                result_type=RecordVerificationResult,
                start_to_close_timeout=timedelta(seconds=30),
                schedule_to_close_timeout=timedelta(hours=1),
                summary=f"record {self._m.state.status.value}",
            )
        except ActivityError:
            workflow.logger.warning("the verification record could not be written")

    def _now(self) -> datetime:
        """The workflow's time, never earlier than the deadline of a timer that fired.

        After a server restart the SDK can hand the workflow the task that delivers a
        fired timer with the previous task's time (seen with the dev server on SQLite:
        the fallback timer fired, then the loop found the step deadline not yet reached
        and armed the whole step timeout again). A fired timer is proof of the time.
        """
        return max(workflow.now(), self._not_before)

    async def _wait(self, wait: steps.Wait) -> None:
        self._m.wake = False
        if wait.timeout <= timedelta(0):
            return
        target = self._now() + wait.timeout
        try:
            await workflow.wait_condition(
                lambda: self._m.wake or self._m.terminal,
                timeout=wait.timeout,
                timeout_summary=wait.summary,
            )
        except TimeoutError:  # the deadline passed: the loop decides what next
            self._not_before = max(self._not_before, target)

    def _advance(self, index: int, reason: str) -> None:
        if self._m.advance(index, reason, self._now()):
            workflow.upsert_search_attributes([self._channel_attribute()])

    def _channel_attribute(self) -> SearchAttributeUpdate[str]:
        return sa.CHANNEL.value_set(self._m.plan.reached_step.channel.value)

    # ------------------------------------------------------------- delivery
    async def _deliver_step(self, index: int) -> None:
        """Run step `index`'s own delivery until it settles or stops mattering.

        A delivery retrying transient failures can take the step's whole budget (up to an
        hour). If `next_channel` moves the plan on or the verification finishes meanwhile,
        the delivery is canceled so the next step starts (or the workflow closes) at once.
        """
        task = asyncio.create_task(self._deliver(index, DeliveryKind.STEP))
        await workflow.wait_condition(
            lambda: task.done() or self._m.terminal or self._m.plan.index != index
        )
        if not task.done() and self._m.terminal and workflow.patched(_SETTLE_PATCH):
            await self._settle(task)
        if not task.done():
            task.cancel()
            # Canceled while waiting for the send lock: no attempt was recorded.
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _settle(self, task: asyncio.Task[DeliveryAttempt]) -> None:
        """The verification ended while this step's delivery was in flight: record and
        publish the end now (its webhooks go out at once), then let the delivery report for
        up to _SETTLE.

        A send whose answer is on its way (often the very message whose code was just
        approved) is then recorded as what it was, sent with its message id, instead of
        canceled; the run records again when it closes. A retry due meanwhile asks the
        workflow first and does not send (VerificationFinished). Only runs that end with a
        delivery in flight take this path (a patch marker, a timer, a second record).
        """
        if self._m.input.code_digest:
            await self._record()
        self._publish_end()
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                task.done, timeout=_SETTLE, timeout_summary="let the delivery in flight settle"
            )

    async def _deliver(self, index: int, kind: DeliveryKind) -> DeliveryAttempt:
        """Deliver the code on plan step `index` (a step's own send or a resend), failing
        over through the step's providers (delivery.Failover) while the step's time lasts.
        A risk refusal ends the verification `blocked` (a resend's only fails the update);
        the cost cap skips to the step's next provider, then to the next step."""
        async with self._send_lock:
            info = workflow.info()
            run = (info.workflow_id, info.run_id)
            before, failover = self._m.start_delivery(index, kind, self._now(), run)
            while (next_try := failover.next(self._now())) is not None:
                attempt = await self._try(next_try)
                if attempt.status is not DeliveryStatus.FAILED:
                    break
                if (
                    attempt.error_type in delivery.REFUSALS
                    and kind is DeliveryKind.RESEND
                    and workflow.patched(_RESEND_REFUSAL_PATCH)
                ):
                    raise self._m.refuse_resend(before, attempt, self._now())
                if attempt.error_type == ErrorType.BLOCKED:
                    # A risk gate refused it: no other provider or channel is tried.
                    self._m.block(self._now())
                if self._m.terminal or attempt.error_type == "DeliveryCanceled":
                    break
            final = failover.last
            if final is None:  # unreachable: the first provider is always tried
                raise ApplicationError("no provider was tried", type="NoProviderTried")
            self._m.delivered(index, kind, final)
            return final

    async def _try(self, next_try: delivery.Try) -> DeliveryAttempt:
        """One provider's try at a delivery, retried within its share of the step's time."""
        attempt = next_try.attempt
        self._m.log.send_attempted(attempt, self._now())
        try:
            result = await workflow.execute_activity(
                ACTIVITY_DELIVER,
                next_try.input,
                result_type=DeliverResult,
                start_to_close_timeout=next_try.start_to_close,
                schedule_to_close_timeout=next_try.budget,
                retry_policy=next_try.retry_policy,
                summary=next_try.summary,
            )
        except ActivityError as err:
            self._m.failed(attempt, err, self._now())
        else:
            self._m.sent(attempt, result, self._now())
        return attempt

    # ---------------------------------------------------------------- check
    @workflow.update
    async def check(self, input: CheckInput) -> CheckResult:
        """Compare a submitted code's digest; exactly one correct check approves."""
        outcomes.require_caller(self._m.state, input)
        await workflow.wait_condition(lambda: self._m.digest is not None or self._m.terminal)
        self._m.expire_if_due(self._now())
        outcomes.require_open(self._m.state)
        if self._m.digest is None:  # unreachable: the wait above ends with a digest or terminal
            raise ApplicationError("no code was issued yet", type="CodeNotIssued")
        # From here to the return there is no await: checks cannot interleave.
        matched = digests_match(self._m.digest, input.digest)
        return self._m.check(matched=matched, now=self._now())

    @check.validator
    def _validate_check(self, input: CheckInput) -> None:
        outcomes.require_digest(input.digest)
        outcomes.require_caller(self._m.state, input)

    # --------------------------------------------------------------- resend
    @workflow.update
    async def resend(self, input: ScopedInput) -> ResendResult:
        """Deliver the same code again on the current channel, within cooldown and send limits."""
        self._validate_resend(input)
        attempt = await self._deliver(self._m.plan.reached, DeliveryKind.RESEND)
        return ResendResult(
            delivery=attempt,
            sends_remaining=self._m.resends.sends_remaining,
            next_resend_at=self._m.state.next_resend_at or attempt.started_at,
        )

    @resend.validator
    def _validate_resend(self, input: ScopedInput) -> None:
        self._m.require_resend(input, self._now(), sending=self._send_lock.locked())

    # --------------------------------------------------------- next channel
    @workflow.update
    async def next_channel(self, input: ScopedInput) -> NextChannelResult:
        """Fall back to the next step of the plan now, without waiting for its timer."""
        # One at a time: two calls validated in the same task would otherwise both advance,
        # skipping a step that is never delivered while the first call waits for it forever.
        async with self._next_lock:
            self._m.require_next(input)
            target = self._m.plan.index + 1
            self._advance(target, steps.REQUESTED_REASON)
            self._m.wake = True
            await workflow.wait_condition(
                lambda: self._m.plan.settled_attempt(target) is not None or self._m.terminal
            )
            attempt = self._m.plan.settled_attempt(target)
            if attempt is None:
                outcomes.require_open(self._m.state)
                raise ApplicationError("the next channel was not attempted", type="NotAttempted")
            return NextChannelResult(step_index=target, delivery=attempt)

    @next_channel.validator
    def _validate_next_channel(self, input: ScopedInput) -> None:
        self._m.require_next(input)

    # --------------------------------------------------------------- cancel
    @workflow.update
    def cancel(self, input: ScopedInput) -> CancelResult:
        """End the verification now; later checks answer that it was canceled."""
        outcomes.require_caller(self._m.state, input)
        self._m.finish(Status.CANCELED, outcomes.CANCELED, self._now())
        return CancelResult(status=self._m.state.status)

    @cancel.validator
    def _validate_cancel(self, input: ScopedInput) -> None:
        outcomes.require_caller(self._m.state, input)

    # ------------------------------------------------------ receipts, state
    @workflow.signal
    def delivery_receipt(self, input: DeliveryReceiptInput) -> None:
        """A provider's delivery receipt: `failed` on the current step falls back at once."""
        self._m.receipt(input, self._now())

    @workflow.query
    def state(self) -> VerificationState:
        """The verification as the workflow sees it now."""
        return self._m.state
