"""One provider's try at delivering the code: its activity input and options, and what
its result or failure means for the delivery attempt.

Rules:
- A try's budget is what is left of its step (at least a second); one activity attempt
  lasts at most 30 s. Transient failures are retried with backoff; the last provider of
  a step retries until the budget ends, the others `provider_max_attempts` times.
- Permanent failures, risk refusals (`Blocked`), the cost cap (`CostCapReached`) and an
  expired code are not retried.
- Each try carries the verification's cost so far and its cost cap; a result's cost is
  kept on the attempt (with a provider's price a receipt brought before it).
- A failure's type is the activity error's `type`, else `DeliveryTimeout`,
  `DeliveryCanceled` or the cause's class name.
- A refusal's details are read defensively (they cross the workflow boundary): a short
  identifier code, a limit name, a retry delay of at least a second, a reason of at most
  300 characters; anything else is dropped.
- A receipt that overtook the result stays: a later "sent" never undoes a "failed" or
  a "delivered".
- Deterministic and sandbox-safe: the standard library, temporalio and otp.domain only;
  the caller passes the time in.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError

from otp.domain import (
    DeliverInput,
    DeliverResult,
    DeliveryAttempt,
    DeliveryKind,
    DeliveryStatus,
    ErrorType,
    VerificationInput,
    VerificationState,
)

MAX_ATTEMPT_TIME = timedelta(seconds=30)
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    non_retryable_error_types=[
        ErrorType.PERMANENT_DELIVERY,
        ErrorType.BLOCKED,
        ErrorType.COST_CAP,
        "CodeExpired",
    ],
)


# Failures whose details say why a control refused the send (a risk gate, a spend cap,
# the verification's cost cap).
REFUSALS = (ErrorType.BLOCKED, ErrorType.COST_CAP)


@dataclasses.dataclass(frozen=True)
class Refusal:
    """What a risk control's refusal said: the reason text (for the record only), its
    short code, the limit's name and when it has room again."""

    reason: str | None = None
    code: str | None = None
    limit: str | None = None
    retry_after_s: int | None = None


def budget(step_end: datetime, now: datetime) -> timedelta:
    """The time a try starting at `now` has: the rest of its step, at least a second."""
    return max(step_end - now, timedelta(seconds=1))


def retry_policy(*, last: bool, provider_max_attempts: int) -> RetryPolicy:
    """The last provider of a step retries within its budget; the others hand over sooner."""
    if last:
        return RETRY
    return dataclasses.replace(RETRY, maximum_attempts=provider_max_attempts)


@dataclasses.dataclass(frozen=True)
class Try:
    """One provider's try: the attempt it records and its activity's input and options."""

    attempt: DeliveryAttempt
    input: DeliverInput
    budget: timedelta
    retry_policy: RetryPolicy
    summary: str

    @property
    def start_to_close(self) -> timedelta:
        return min(self.budget, MAX_ATTEMPT_TIME)


class Failover:
    """One delivery (a step's own send or a resend) walking its step's providers in order.

    Each try is a new DeliveryAttempt appended to the state's deliveries, keyed
    `<workflow id>:<run id>:<n>`. Every try charges the send limits as one send (the first
    try's key is the member), none does where the API charged them at create (a run's
    very first delivery). A provider after the first is only tried with a second or more
    left on the step.
    """

    def __init__(
        self,
        input: VerificationInput,
        state: VerificationState,
        index: int,
        kind: DeliveryKind,
        *,
        step_end: datetime,
        nonce: str,
        run: tuple[str, str],
    ) -> None:
        self._input, self._state, self._index, self._kind = input, state, index, kind
        self._step = input.channels[index]
        self._step_end, self._nonce, self._run = step_end, nonce, run
        self._providers: list[str | None] = [*self._step.providers] or [None]
        self._position = 0
        self._member: str | None = None
        self._precounted = bool(input.code_digest) and not state.deliveries
        self.last: DeliveryAttempt | None = None

    def next(self, now: datetime) -> Try | None:
        """The next provider's try starting at `now`, or None: no provider or time left."""
        position = self._position
        if position >= len(self._providers):
            return None
        if position > 0 and self._step_end - now < timedelta(seconds=1):
            return None  # no time left on this step for another provider
        self._position += 1
        provider, step, kind = self._providers[position], self._step, self._kind
        attempt = DeliveryAttempt(
            step_index=self._index,
            kind=kind,
            channel=step.channel,
            provider=provider,
            started_at=now,
            updated_at=now,
            rule_id=step.rule_id,
            sender=step.sender,
        )
        self._state.deliveries.append(attempt)
        workflow_id, run_id = self._run
        attempt.reference = f"{workflow_id}:{run_id}:{len(self._state.deliveries)}"
        deliver = DeliverInput(
            verification_id=workflow_id,
            application_id=self._input.application_id,
            mode=self._input.mode,
            step_index=self._index,
            kind=kind,
            channel=step.channel,
            to=step.to,
            provider=provider,
            nonce=self._nonce,
            code_length=self._input.code_length,
            code_type=self._input.code_type,
            locale=self._input.locale,
            brand=self._input.brand,
            expires_at=self._state.expires_at,
            delivery_key=attempt.reference,
            web_domain=self._input.web_domain,
            app_hash=self._input.app_hash,
            country=self._input.country,
            precounted=self._precounted,
            limit_member=self._member or attempt.reference,
            rule_id=step.rule_id,
            sender=step.sender,
            cost_so_far_micros=cost_so_far(self._state),
            cost_cap_micros=self._input.cost_cap_micros,
            precharged_micros=self._input.precharged_micros if self._precounted else 0,
        )
        self._member = self._member or attempt.reference
        self.last = attempt
        last = position == len(self._providers) - 1
        via = f" via {provider}" if provider else ""
        return Try(
            attempt=attempt,
            input=deliver,
            budget=budget(self._step_end, now),
            retry_policy=retry_policy(
                last=last, provider_max_attempts=self._input.provider_max_attempts
            ),
            summary=f"deliver {step.channel.value} (step {self._index + 1}, {kind.value}){via}",
        )


def cost_so_far(state: VerificationState) -> int:
    """The verification's cost so far (micros): each costed delivery's amount."""
    return sum(a.cost.amount_micros for a in state.deliveries if a.cost is not None)


def succeeded(attempt: DeliveryAttempt, result: DeliverResult) -> None:
    """The provider took the message: its name and id; the status unless a receipt set it;
    its cost (a provider's price that a receipt brought first is kept)."""
    attempt.provider = result.provider
    attempt.provider_message_id = result.provider_message_id
    attempt.template_version = result.template_version
    if result.cost is not None:
        reported = attempt.cost
        attempt.cost = result.cost
        if reported is not None and reported.reported_micros is not None:
            attempt.cost.reported_micros = reported.reported_micros
            attempt.cost.reported_currency = reported.reported_currency
    if attempt.status is DeliveryStatus.SENDING:
        attempt.status = result.status


def failed(attempt: DeliveryAttempt, err: ActivityError) -> Refusal | None:
    """The try failed for good: mark it; the refusal's details if a risk control refused it."""
    attempt.status = DeliveryStatus.FAILED
    attempt.error_type = failure_type(err)
    return refusal(err) if attempt.error_type in REFUSALS else None


def failure_type(err: ActivityError) -> str:
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type:
        return cause.type
    if isinstance(cause, TemporalTimeoutError):
        return "DeliveryTimeout"
    if isinstance(cause, CancelledError):
        return "DeliveryCanceled"
    return type(cause).__name__ if cause else "DeliveryFailed"


def refusal(err: ActivityError) -> Refusal:
    """The first detail of a refused send (`reason`, `code`, `limit`, `retry_after_s`)."""
    cause = err.cause
    detail = cause.details[0] if isinstance(cause, ApplicationError) and cause.details else None
    if not isinstance(detail, dict):
        return Refusal()
    reason, code = detail.get("reason"), detail.get("code")
    limit, retry = detail.get("limit"), detail.get("retry_after_s")
    return Refusal(
        reason=reason[:300] if isinstance(reason, str) else None,
        code=code[:40] if isinstance(code, str) and code.isidentifier() else None,
        limit=limit[:40] if isinstance(limit, str) and limit.isidentifier() else None,
        retry_after_s=(
            max(1, int(retry))
            if isinstance(retry, int | float) and not isinstance(retry, bool)
            else None
        ),
    )
