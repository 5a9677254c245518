"""VerificationWorkflow: one verification, from code issue to a terminal status.

Deterministic: no I/O, no environment, no clock but workflow.now(). The plaintext
code never enters this workflow; it holds only the nonce that activities derive the
code from and the keyed digest that submitted codes are compared with.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
from datetime import datetime, timedelta
from typing import NoReturn

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError

with workflow.unsafe.imports_passed_through():
    from otp.domain import (
        ACTIVITY_DELIVER,
        ACTIVITY_ISSUE_CODE,
        ACTIVITY_RECORD,
        TERMINAL_EVENT_OF,
        CancelResult,
        ChannelStep,
        CheckInput,
        CheckResult,
        DeliverInput,
        DeliverResult,
        DeliveryAttempt,
        DeliveryKind,
        DeliveryReceiptInput,
        DeliveryStatus,
        ErrorType,
        EventType,
        IssueCodeInput,
        IssueCodeResult,
        LogEntry,
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

_DIGEST_HEX_LEN = 64
# The resend cooldown grows by the input's `resend_backoff` after each resend, up to this.
_MAX_RESEND_COOLDOWN_S = 3600
_MAX_BUFFERED_RECEIPTS = 32
# A delivery still in flight when the verification ends gets this long to report what
# happened (an attempt's own start-to-close timeout is at most 30 s).
_SETTLE = timedelta(seconds=30)
_SETTLE_PATCH = "settle-delivery-in-flight"
# A resend the delivery gate refuses fails its update and leaves the verification as it
# was (before: the verification ended `blocked`). Asked only when a resend is refused.
_RESEND_REFUSAL_PATCH = "resend-refusal-keeps-verification"
_DELIVERY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    non_retryable_error_types=[ErrorType.PERMANENT_DELIVERY, ErrorType.BLOCKED, "CodeExpired"],
)


# Step states of the current plan step.
_PENDING, _ACTIVE, _FAILED = "pending", "active", "failed"


@workflow.defn(name="VerificationWorkflow")
class VerificationWorkflow:
    @workflow.init
    def __init__(self, input: VerificationInput) -> None:
        created = input.created_at or workflow.info().start_time
        self._input = input
        self._state = VerificationState.initial(input, created)
        self._digest: str | None = None
        self._nonce: str | None = None
        self._step_state = _PENDING
        self._step_deadline = self._state.expires_at
        self._wake = False
        self._send_lock = asyncio.Lock()
        self._next_lock = asyncio.Lock()
        self._unmatched_receipts: list[DeliveryReceiptInput] = []
        self._blocked_reason: str | None = None
        self._blocked_code: str | None = None
        self._refusal: dict[str, str | int | None] | None = None
        self._resends = 0
        self._published = False  # the terminal status is in the search attributes
        # A fired timer proves its deadline has passed; see _now().
        self._not_before = workflow.now()
        # State changes for the event log, written in one batch when the run ends.
        self._log: list[LogEntry] = [
            LogEntry(
                key="created",
                type=EventType.CREATED,
                occurred_at=created,
                channel=input.channels[0].channel if input.channels else None,
                step_index=0,
            )
        ]

    # ------------------------------------------------------------------ run
    @workflow.run
    async def run(self, input: VerificationInput) -> VerificationState:
        if input.code_digest and input.code_nonce:
            # Issued by the API with the start: no activity needed.
            self._digest, self._nonce = input.code_digest, input.code_nonce
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
            self._digest, self._nonce = issued.digest, issued.nonce
        self._state.code_issued = True

        plan = input.channels
        while not self._terminal:
            now = self._now()
            if now >= self._state.expires_at:
                self._finish(Status.EXPIRED, "the code expired before it was verified")
                break
            index = self._state.current_step
            if index < len(plan):
                if self._step_state == _PENDING:
                    await self._deliver_step(index)
                    continue
                if self._step_state == _FAILED or now >= self._step_deadline:
                    self._advance(
                        index + 1,
                        "delivery failed"
                        if self._step_state == _FAILED
                        else "no correct code before the step's timeout",
                    )
                    continue
            elif self._deliveries_all_failed():
                self._finish(Status.UNDELIVERABLE, "every channel in the plan failed to deliver")
                break
            await self._sleep_until(self._next_deadline(index), index)

        if input.code_digest:
            # Runs that issue their code with an activity predate the event log batch
            # (and so replay without it). No `patched` marker: it would cost an upsert.
            await self._record()
        if not self._published:
            self._publish_end()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._state

    def _publish_end(self) -> None:
        """Upsert the terminal status (and last channel) once: one action per verification."""
        self._published = True
        workflow.upsert_search_attributes(
            [
                sa.STATUS.value_set(self._state.status.value),
                self._channel_attribute(),
                sa.REASON.value_set(self._reason_code()),
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
                    state=self._state,
                    entries=self._log,
                    country=self._input.country,
                ),
                result_type=RecordVerificationResult,
                start_to_close_timeout=timedelta(seconds=30),
                schedule_to_close_timeout=timedelta(hours=1),
                summary=f"record {self._state.status.value}",
            )
        except ActivityError:
            workflow.logger.warning("the verification record could not be written")

    def _note(self, type: EventType, key: str, **fields: object) -> None:
        self._log.append(LogEntry(key=key, type=type, occurred_at=self._now(), **fields))

    def _reason_code(self) -> str:
        status = self._state.status.value
        return f"{status}:{self._blocked_code}" if self._blocked_code else status

    def _now(self) -> datetime:
        """The workflow's time, never earlier than the deadline of a timer that fired.

        After a server restart the SDK can hand the workflow the task that delivers a
        fired timer with the previous task's time (seen with the dev server on SQLite:
        the fallback timer fired, then the loop found the step deadline not yet reached
        and armed the whole step timeout again). A fired timer is proof of the time.
        """
        return max(workflow.now(), self._not_before)

    @property
    def _terminal(self) -> bool:
        return self._state.status.is_terminal

    def _next_deadline(self, index: int) -> timedelta:
        deadline = self._state.expires_at
        if index < len(self._input.channels):
            deadline = min(deadline, self._step_deadline)
        return deadline - self._now()

    async def _sleep_until(self, remaining: timedelta, index: int) -> None:
        self._wake = False
        if remaining <= timedelta(0):
            return
        if index < len(self._input.channels):
            summary = f"step {index + 1} ({self._input.channels[index].channel.value}) or expiry"
        else:
            summary = "expiry"
        timeout = timedelta(milliseconds=math.ceil(remaining / timedelta(milliseconds=1)))
        target = self._now() + timeout
        try:
            await workflow.wait_condition(
                lambda: self._wake or self._terminal,
                # Whole milliseconds keep the timer stable and readable in the UI.
                timeout=timeout,
                timeout_summary=f"wait for check: {summary}",
            )
        except TimeoutError:  # the deadline passed: the loop decides what next
            self._not_before = max(self._not_before, target)

    def _advance(self, index: int, reason: str) -> None:
        self._state.current_step = index
        self._step_state = _PENDING
        if index < len(self._input.channels):
            self._note(
                EventType.FALLBACK,
                f"fallback:{index}",
                channel=self._input.channels[index].channel,
                step_index=index,
                reason=reason,
            )
            workflow.upsert_search_attributes([self._channel_attribute()])

    def _channel_attribute(self) -> SearchAttributeUpdate[str]:
        plan = self._input.channels
        step = plan[min(self._state.current_step, len(plan) - 1)]
        return sa.CHANNEL.value_set(step.channel.value)

    def _deliveries_all_failed(self) -> bool:
        return all(d.status is DeliveryStatus.FAILED for d in self._state.deliveries)

    def _finish(self, status: Status, reason: str) -> None:
        if self._terminal:
            return
        self._state.status = status
        self._state.reason = reason
        self._state.finished_at = self._now()
        self._wake = True
        plan = self._input.channels
        index = min(self._state.current_step, len(plan) - 1)
        self._note(
            TERMINAL_EVENT_OF[status],
            "terminal",
            channel=plan[index].channel if plan else None,
            step_index=index,
            reason=reason,
        )

    # ------------------------------------------------------------- delivery
    async def _deliver_step(self, index: int) -> None:
        """Run step `index`'s own delivery until it settles or stops mattering.

        A delivery retrying transient failures can take the step's whole budget (up to an
        hour). If `next_channel` moves the plan on or the verification finishes meanwhile,
        the delivery is canceled so the next step starts (or the workflow closes) at once.
        """
        task = asyncio.create_task(self._deliver(index, DeliveryKind.STEP))
        await workflow.wait_condition(
            lambda: task.done() or self._terminal or self._state.current_step != index
        )
        if not task.done() and self._terminal and workflow.patched(_SETTLE_PATCH):
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
        if self._input.code_digest:
            await self._record()
        self._publish_end()
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                task.done, timeout=_SETTLE, timeout_summary="let the delivery in flight settle"
            )

    async def _deliver(self, index: int, kind: DeliveryKind) -> DeliveryAttempt:
        """Deliver the code on plan step `index` (a step's own send or a resend).

        A step with several providers fails over: a provider that fails permanently, or
        transiently `provider_max_attempts` times, hands over to the next one while the
        step's time lasts. Each provider's try is its own DeliveryAttempt in the record.
        """
        async with self._send_lock:
            step = self._input.channels[index]
            started = self._now()
            before = _SendState(
                sends=self._state.sends,
                resends=self._resends,
                next_resend_at=self._state.next_resend_at,
                step_state=self._step_state,
                step_deadline=self._step_deadline,
            )
            self._state.sends += 1
            if kind is DeliveryKind.RESEND:
                self._resends += 1
            self._state.next_resend_at = started + timedelta(seconds=self._resend_cooldown_s())
            if index == self._state.current_step:
                # A send (or resend) on the current step restarts its fallback timer.
                self._step_state = _ACTIVE
                self._step_deadline = started + timedelta(seconds=step.timeout_s)
            if self._nonce is None:
                raise ApplicationError("no code was issued yet", type="CodeNotIssued")
            step_end = min(started + timedelta(seconds=step.timeout_s), self._state.expires_at)
            providers: list[str | None] = [*step.providers] or [None]
            attempt: DeliveryAttempt | None = None
            # Every provider try of this delivery charges the send limits as one send, and
            # none does where the API charged them at create (a run's very first delivery).
            member: str | None = None
            precounted = bool(self._input.code_digest) and not self._state.deliveries
            for position, provider in enumerate(providers):
                now = self._now()
                if position > 0 and step_end - now < timedelta(seconds=1):
                    break  # no time left on this step for another provider
                attempt = await self._deliver_once(
                    index,
                    kind,
                    step,
                    provider,
                    now,
                    step_end,
                    last=position == len(providers) - 1,
                    member=member,
                    precounted=precounted,
                )
                member = member or attempt.reference
                if attempt.status is not DeliveryStatus.FAILED:
                    break
                if (
                    attempt.error_type == ErrorType.BLOCKED
                    and kind is DeliveryKind.RESEND
                    and workflow.patched(_RESEND_REFUSAL_PATCH)
                ):
                    self._refuse_resend(before, attempt)
                if attempt.error_type == ErrorType.BLOCKED:
                    # A risk gate refused it: no other provider or channel is tried.
                    self._finish(
                        Status.BLOCKED, self._blocked_reason or "refused by a risk control"
                    )
                if self._terminal or attempt.error_type == "DeliveryCanceled":
                    break
            if attempt is None:  # unreachable: the first provider is always tried
                raise ApplicationError("no provider was tried", type="NoProviderTried")
            if (
                attempt.status is DeliveryStatus.FAILED
                and kind is DeliveryKind.STEP
                and index == self._state.current_step
            ):
                self._step_state = _FAILED
            self._wake = True
            return attempt

    def _refuse_resend(self, before: _SendState, attempt: DeliveryAttempt) -> NoReturn:
        """The delivery gate refused a resend: put the sends, the cooldown and the step's
        timer back as they were and fail the update. The verification stays pending with
        the same code; the refused try stays in `deliveries` (failed, `Blocked`) and in the
        event log, and a later block or limit of the step's own sends still ends it."""
        detail = self._refusal or {}
        self._refusal = None
        self._blocked_reason = self._blocked_code = None
        self._state.sends = before.sends
        self._resends = before.resends
        self._state.next_resend_at = before.next_resend_at
        self._step_state = before.step_state
        self._step_deadline = before.step_deadline
        attempt.updated_at = self._now()
        raise ApplicationError(
            "the resend was refused by a risk control",
            {
                "code": detail.get("code"),
                "limit": detail.get("limit"),
                "retry_after_s": detail.get("retry_after_s"),
            },
            type=ErrorType.RESEND_REFUSED,
            non_retryable=True,
        )

    def _resend_cooldown_s(self) -> float:
        """The wait before the next resend: the base cooldown, times the backoff for every
        resend so far (1.0, the default, keeps it constant), capped at an hour."""
        base = self._input.resend_cooldown_s
        if self._resends == 0 or self._input.resend_backoff == 1.0:
            return base
        grown = base * self._input.resend_backoff**self._resends
        return min(grown, max(base, _MAX_RESEND_COOLDOWN_S))

    async def _deliver_once(
        self,
        index: int,
        kind: DeliveryKind,
        step: ChannelStep,
        provider: str | None,
        now: datetime,
        step_end: datetime,
        *,
        last: bool,
        member: str | None = None,
        precounted: bool = False,
    ) -> DeliveryAttempt:
        """One provider's try at a delivery, retried within its share of the step's time.

        `member`: what the send limits are charged with (the delivery's first try's
        reference; None for the first try: its own reference); `precounted`: the API
        charged them already."""
        info = workflow.info()
        attempt = DeliveryAttempt(
            step_index=index,
            kind=kind,
            channel=step.channel,
            provider=provider,
            started_at=now,
            updated_at=now,
        )
        self._state.deliveries.append(attempt)
        attempt.reference = f"{info.workflow_id}:{info.run_id}:{len(self._state.deliveries)}"
        self._note(
            EventType.SEND_ATTEMPTED,
            f"send:{attempt.reference}",
            channel=step.channel,
            provider=provider,
            step_index=index,
            reason=kind.value,
        )
        budget = max(step_end - now, timedelta(seconds=1))
        via = f" via {provider}" if provider else ""
        try:
            result = await workflow.execute_activity(
                ACTIVITY_DELIVER,
                DeliverInput(
                    verification_id=info.workflow_id,
                    application_id=self._input.application_id,
                    mode=self._input.mode,
                    step_index=index,
                    kind=kind,
                    channel=step.channel,
                    to=step.to,
                    provider=provider,
                    nonce=self._nonce or "",
                    code_length=self._input.code_length,
                    code_type=self._input.code_type,
                    locale=self._input.locale,
                    brand=self._input.brand,
                    expires_at=self._state.expires_at,
                    delivery_key=attempt.reference,
                    web_domain=self._input.web_domain,
                    app_hash=self._input.app_hash,
                    country=self._input.country,
                    # The API charged the limits of a run's very first delivery at create.
                    precounted=precounted,
                    limit_member=member or attempt.reference,
                ),
                result_type=DeliverResult,
                start_to_close_timeout=min(budget, timedelta(seconds=30)),
                schedule_to_close_timeout=budget,
                retry_policy=(
                    _DELIVERY_RETRY
                    if last
                    else dataclasses.replace(
                        _DELIVERY_RETRY, maximum_attempts=self._input.provider_max_attempts
                    )
                ),
                summary=f"deliver {step.channel.value} (step {index + 1}, {kind.value}){via}",
            )
        except ActivityError as err:
            attempt.status = DeliveryStatus.FAILED
            attempt.error_type = _failure_type(err)
            if attempt.error_type == ErrorType.BLOCKED:
                self._blocked_reason, self._blocked_code = _blocked_detail(err)
                self._refusal = _refusal_detail(err)
            self._note(
                EventType.FAILED,
                f"failed:{attempt.reference}",
                channel=step.channel,
                provider=provider,
                step_index=index,
                reason=attempt.error_type,
            )
        else:
            attempt.provider = result.provider
            attempt.provider_message_id = result.provider_message_id
            if attempt.status is DeliveryStatus.SENDING:
                # A receipt that overtook this result (matched by reference) stays: a
                # later "sent" must not undo its "failed" or "delivered".
                attempt.status = result.status
            self._note(
                EventType.SENT,
                f"sent:{attempt.reference}",
                channel=step.channel,
                provider=result.provider,
                provider_message_id=result.provider_message_id or None,
                step_index=index,
            )
            early = self._take_unmatched(attempt)
            if early is not None:
                self._apply_receipt(attempt, early)
        attempt.updated_at = self._now()
        return attempt

    # ---------------------------------------------------------------- check
    def _require_scope(self, input: ScopedInput | CheckInput) -> None:
        if input.application_id != self._state.application_id or input.mode != self._state.mode:
            # Someone else's verification looks exactly like one that does not exist.
            raise ApplicationError("verification not found", type=ErrorType.NOT_FOUND)

    def _require_open(self) -> None:
        if self._terminal:
            raise ApplicationError(
                f"verification is {self._state.status.value}",
                {"status": self._state.status.value, "reason": self._state.reason},
                type=ErrorType.FINISHED,
                non_retryable=True,
            )

    @workflow.update
    async def check(self, input: CheckInput) -> CheckResult:
        """Compare a submitted code's digest; exactly one correct check approves."""
        self._require_scope(input)
        self._require_open()
        await workflow.wait_condition(lambda: self._digest is not None or self._terminal)
        if not self._terminal and self._now() >= self._state.expires_at:
            self._finish(Status.EXPIRED, "the code expired before it was verified")
        self._require_open()
        if self._digest is None:  # unreachable: the wait above ends with a digest or terminal
            raise ApplicationError("no code was issued yet", type="CodeNotIssued")
        # From here to the return there is no await: checks cannot interleave.
        self._state.attempts_used += 1
        used = self._state.attempts_used
        if digests_match(self._digest, input.digest):
            self._finish(Status.APPROVED, "the correct code was submitted")
            return CheckResult(
                status=Status.APPROVED,
                valid=True,
                attempts_remaining=self._state.attempts_remaining,
                attempts_used=used,
            )
        self._note(EventType.CHECK_FAILED, f"check:{used}", reason="incorrect code")
        if used >= self._state.max_attempts:
            self._finish(Status.MAX_ATTEMPTS_REACHED, "too many incorrect codes were submitted")
        return CheckResult(
            status=self._state.status,
            valid=False,
            attempts_remaining=self._state.attempts_remaining,
            attempts_used=used,
        )

    @check.validator
    def _validate_check(self, input: CheckInput) -> None:
        if len(input.digest) != _DIGEST_HEX_LEN or any(
            c not in "0123456789abcdef" for c in input.digest
        ):
            raise ApplicationError("malformed code digest", type=ErrorType.INVALID_INPUT)
        self._require_scope(input)
        self._require_open()

    # --------------------------------------------------------------- resend
    @workflow.update
    async def resend(self, input: ScopedInput) -> ResendResult:
        """Deliver the same code again on the current channel, within cooldown and send limits."""
        self._require_resend_allowed(input)
        index = min(self._state.current_step, len(self._input.channels) - 1)
        attempt = await self._deliver(index, DeliveryKind.RESEND)
        return ResendResult(
            delivery=attempt,
            sends_remaining=max(0, self._state.max_sends - self._state.sends),
            next_resend_at=self._state.next_resend_at or attempt.started_at,
        )

    @resend.validator
    def _validate_resend(self, input: ScopedInput) -> None:
        self._require_resend_allowed(input)

    def _require_resend_allowed(self, input: ScopedInput) -> None:
        self._require_scope(input)
        self._require_open()
        if self._state.sends >= self._state.max_sends:
            raise ApplicationError(
                "the maximum number of sends for this verification was reached",
                type=ErrorType.MAX_SENDS,
                non_retryable=True,
            )
        now = self._now()
        ready_at = self._state.next_resend_at
        # A send in flight, or a step whose own send has not started (next_channel just
        # moved the plan on), counts as "just sent": a resend would stand in for that send.
        step_unsent = (
            self._state.current_step < len(self._input.channels) and self._step_state == _PENDING
        )
        if ready_at is None or now < ready_at or self._send_lock.locked() or step_unsent:
            wait_s = (ready_at - now).total_seconds() if ready_at else self._input.resend_cooldown_s
            raise ApplicationError(
                "a code was sent moments ago; wait before resending",
                {"retry_after_s": max(1, math.ceil(wait_s))},
                type=ErrorType.RESEND_COOLDOWN,
                non_retryable=True,
            )

    # --------------------------------------------------------- next channel
    @workflow.update
    async def next_channel(self, input: ScopedInput) -> NextChannelResult:
        """Fall back to the next step of the plan now, without waiting for its timer."""
        # One at a time: two calls validated in the same task would otherwise both advance,
        # skipping a step that is never delivered while the first call waits for it forever.
        async with self._next_lock:
            return await self._next_channel(input)

    async def _next_channel(self, input: ScopedInput) -> NextChannelResult:
        self._require_next_allowed(input)
        target = self._state.current_step + 1
        self._advance(target, "requested by the application")
        self._wake = True

        def settled() -> DeliveryAttempt | None:
            attempt = self._step_attempt(target)
            if attempt is None or attempt.status is DeliveryStatus.SENDING:
                return None
            return attempt

        await workflow.wait_condition(lambda: settled() is not None or self._terminal)
        attempt = settled()
        if attempt is None:
            self._require_open()
            raise ApplicationError("the next channel was not attempted", type="NotAttempted")
        return NextChannelResult(step_index=target, delivery=attempt)

    @next_channel.validator
    def _validate_next_channel(self, input: ScopedInput) -> None:
        self._require_next_allowed(input)

    def _require_next_allowed(self, input: ScopedInput) -> None:
        self._require_scope(input)
        self._require_open()
        if self._state.current_step + 1 >= len(self._input.channels):
            raise ApplicationError(
                "there is no further channel in the plan",
                type=ErrorType.NO_MORE_CHANNELS,
                non_retryable=True,
            )

    def _step_attempt(self, index: int) -> DeliveryAttempt | None:
        for attempt in reversed(self._state.deliveries):
            if attempt.step_index == index and attempt.kind is DeliveryKind.STEP:
                return attempt
        return None

    # --------------------------------------------------------------- cancel
    @workflow.update
    def cancel(self, input: ScopedInput) -> CancelResult:
        """End the verification now; later checks answer that it was canceled."""
        self._require_scope(input)
        self._require_open()
        self._finish(Status.CANCELED, "canceled by the application")
        return CancelResult(status=self._state.status)

    @cancel.validator
    def _validate_cancel(self, input: ScopedInput) -> None:
        self._require_scope(input)
        self._require_open()

    # ------------------------------------------------------ receipts, state
    @workflow.signal
    def delivery_receipt(self, input: DeliveryReceiptInput) -> None:
        """A provider's delivery receipt: `failed` on the current step falls back at once."""
        for attempt in self._state.deliveries:
            if _receipt_matches(attempt, input):
                self._apply_receipt(attempt, input)
                return
        if len(self._unmatched_receipts) < _MAX_BUFFERED_RECEIPTS:
            # The receipt overtook the send's own result: apply it when that arrives.
            self._unmatched_receipts.append(input)

    def _take_unmatched(self, attempt: DeliveryAttempt) -> DeliveryReceiptInput | None:
        for position, receipt in enumerate(self._unmatched_receipts):
            if _receipt_matches(attempt, receipt):
                return self._unmatched_receipts.pop(position)
        return None

    def _apply_receipt(self, attempt: DeliveryAttempt, receipt: DeliveryReceiptInput) -> None:
        if attempt.status is DeliveryStatus.FAILED:
            return
        if not attempt.provider_message_id:
            # Matched by reference: the send's outcome was unknown until this receipt.
            attempt.provider_message_id = receipt.provider_message_id
        if receipt.status is DeliveryStatus.FAILED:
            attempt.status = DeliveryStatus.FAILED
            attempt.error_type = receipt.error_code or "receipt_failed"
            self._note(
                EventType.FAILED,
                f"failed:{attempt.reference}",
                channel=attempt.channel,
                provider=attempt.provider,
                provider_message_id=attempt.provider_message_id,
                step_index=attempt.step_index,
                reason=attempt.error_type,
            )
            if (
                attempt.step_index == self._state.current_step
                and not self._terminal
                and self._step_state == _ACTIVE
            ):
                self._step_state = _FAILED
        elif receipt.status is DeliveryStatus.DELIVERED:
            attempt.status = DeliveryStatus.DELIVERED
            self._note(
                EventType.DELIVERED,
                f"delivered:{attempt.reference}",
                channel=attempt.channel,
                provider=attempt.provider,
                provider_message_id=attempt.provider_message_id,
                step_index=attempt.step_index,
            )
        attempt.updated_at = self._now()
        self._wake = True

    @workflow.query
    def state(self) -> VerificationState:
        """The verification as the workflow sees it now."""
        return self._state


def _receipt_matches(attempt: DeliveryAttempt, receipt: DeliveryReceiptInput) -> bool:
    if attempt.provider_message_id and attempt.provider_message_id == receipt.provider_message_id:
        return True
    return bool(receipt.reference) and attempt.reference == receipt.reference


def _blocked_detail(err: ActivityError) -> tuple[str | None, str | None]:
    """(reason text, short code) of a refused send: the first detail's `reason`/`code`."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.details:
        detail = cause.details[0]
        if isinstance(detail, dict):
            reason, code = detail.get("reason"), detail.get("code")
            return (
                str(reason)[:300] if isinstance(reason, str) else None,
                str(code)[:40] if isinstance(code, str) and code.isidentifier() else None,
            )
    return None, None


def _refusal_detail(err: ActivityError) -> dict[str, str | int | None]:
    """What a refused send tells its caller: the short code, the full limit's name and
    when it has room again (the last two None for a block). Never the reason text."""
    cause = err.cause
    detail = cause.details[0] if isinstance(cause, ApplicationError) and cause.details else None
    if not isinstance(detail, dict):
        return {"code": None, "limit": None, "retry_after_s": None}
    code, limit, retry = detail.get("code"), detail.get("limit"), detail.get("retry_after_s")
    return {
        "code": code[:40] if isinstance(code, str) and code.isidentifier() else None,
        "limit": limit[:40] if isinstance(limit, str) and limit.isidentifier() else None,
        "retry_after_s": (
            max(1, int(retry))
            if isinstance(retry, int | float) and not isinstance(retry, bool)
            else None
        ),
    }


@dataclasses.dataclass(frozen=True)
class _SendState:
    """What a delivery changes before it is tried (put back when a resend is refused)."""

    sends: int
    resends: int
    next_resend_at: datetime | None
    step_state: str
    step_deadline: datetime


def _failure_type(err: ActivityError) -> str:
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type:
        return cause.type
    if isinstance(cause, TemporalTimeoutError):
        return "DeliveryTimeout"
    if isinstance(cause, CancelledError):
        return "DeliveryCanceled"
    return type(cause).__name__ if cause else "DeliveryFailed"
