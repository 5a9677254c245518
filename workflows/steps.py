"""StepPlan: where a verification is in its channel plan, and what its run loop does next.

A plain class used by VerificationWorkflow (like a timer library beside a workflow): it
holds the current step's phase and fallback deadline and reads the step index, expiry
and deliveries from the verification's state, which it shares with the workflow.

Rules:
- A step is `pending` until its own send starts, `active` once it has, `failed` when
  that send failed (its result or a failed receipt). A failed step falls back at once.
- A send or a resend on the current step restarts its fallback timer: due `timeout_s`
  after that send started. A delivery never runs past its step's end or the expiry.
- Moving on makes the next step current and pending; past the last step only the
  expiry remains, unless every delivery failed (then the verification is undeliverable).
- Deterministic and sandbox-safe: the standard library, temporalio and otp.domain only;
  the caller passes the time in (`workflow.now()`), nothing here reads a clock.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime, timedelta
from enum import StrEnum

from temporalio.exceptions import ApplicationError

import workflows.outcomes as outcomes
from otp.domain import (
    Channel,
    ChannelStep,
    DeliveryAttempt,
    DeliveryKind,
    DeliveryStatus,
    ErrorType,
    Status,
    VerificationState,
)

FAILED_REASON = "delivery failed"
TIMEOUT_REASON = "no correct code before the step's timeout"
REQUESTED_REASON = "requested by the application"


class Phase(StrEnum):
    """Where the current step's own send is."""

    PENDING = "pending"
    ACTIVE = "active"
    FAILED = "failed"


@dataclasses.dataclass(frozen=True)
class Deliver:
    """Run step `index`'s own send."""

    index: int


@dataclasses.dataclass(frozen=True)
class Advance:
    """Fall back to step `index` (past the last step: only the expiry is left)."""

    index: int
    reason: str


@dataclasses.dataclass(frozen=True)
class Finish:
    """End the verification with `status`."""

    status: Status
    reason: str


@dataclasses.dataclass(frozen=True)
class Wait:
    """Wait for a check, a receipt or an update, for at most `timeout` (whole milliseconds)."""

    timeout: timedelta
    summary: str


Move = Deliver | Advance | Finish | Wait


@dataclasses.dataclass(frozen=True)
class StepSnapshot:
    """The step's phase and deadline, to put back when a resend is refused."""

    phase: Phase
    deadline: datetime


def whole_ms(delta: timedelta) -> timedelta:
    """`delta` rounded up to whole milliseconds: a timer stable and readable in the UI."""
    return timedelta(milliseconds=math.ceil(delta / timedelta(milliseconds=1)))


class StepPlan:
    """The channel plan's progression: current step, its phase, when the next one is due."""

    def __init__(self, steps: list[ChannelStep], state: VerificationState) -> None:
        self.steps = steps
        self._state = state
        self.phase = Phase.PENDING
        self.deadline = state.expires_at  # the current step's fallback time, once it is sent

    @property
    def index(self) -> int:
        """The current step (len(steps) once the plan is exhausted)."""
        return self._state.current_step

    @property
    def reached(self) -> int:
        """The last step the plan reached (the current one, or the last after the plan)."""
        return min(self.index, len(self.steps) - 1)

    @property
    def reached_step(self) -> ChannelStep:
        return self.steps[self.reached]

    @property
    def reached_channel(self) -> Channel | None:
        return self.reached_step.channel if self.steps else None

    @property
    def step_unsent(self) -> bool:
        """The current step's own send has not started (next_channel just moved on)."""
        return self.index < len(self.steps) and self.phase is Phase.PENDING

    def next_move(self, now: datetime) -> Move:
        """What the run loop does at `now`: send, fall back, finish or wait."""
        expires_at = self._state.expires_at
        if now >= expires_at:
            return Finish(Status.EXPIRED, outcomes.EXPIRED)
        index = self.index
        if index < len(self.steps):
            if self.phase is Phase.PENDING:
                return Deliver(index)
            if self.phase is Phase.FAILED or now >= self.deadline:
                failed = self.phase is Phase.FAILED
                return Advance(index + 1, FAILED_REASON if failed else TIMEOUT_REASON)
            due = min(expires_at, self.deadline)
            what = f"step {index + 1} ({self.steps[index].channel.value}) or expiry"
        elif all(d.status is DeliveryStatus.FAILED for d in self._state.deliveries):
            return Finish(Status.UNDELIVERABLE, outcomes.UNDELIVERABLE)
        else:
            due, what = expires_at, "expiry"
        return Wait(whole_ms(due - now), f"wait for check: {what}")

    def advance(self, index: int) -> ChannelStep | None:
        """Make step `index` current and pending; its step, or None past the plan."""
        self._state.current_step = index
        self.phase = Phase.PENDING
        return self.steps[index] if index < len(self.steps) else None

    def require_next(self) -> None:
        """Refuse a next-channel call on the last step (or after the plan)."""
        if self.index + 1 >= len(self.steps):
            raise ApplicationError(
                "there is no further channel in the plan",
                type=ErrorType.NO_MORE_CHANNELS,
                non_retryable=True,
            )

    def sending(self, index: int, started: datetime) -> None:
        """A send on step `index` starts: on the current step it restarts the fallback timer."""
        if index == self.index:
            self.phase = Phase.ACTIVE
            self.deadline = started + timedelta(seconds=self.steps[index].timeout_s)

    def step_end(self, index: int, started: datetime) -> datetime:
        """Until when a delivery on step `index` started at `started` may run."""
        step_end = started + timedelta(seconds=self.steps[index].timeout_s)
        return min(step_end, self._state.expires_at)

    def send_failed(self, index: int) -> None:
        """Step `index`'s own delivery failed (every provider): the current step falls back."""
        if index == self.index:
            self.phase = Phase.FAILED

    def receipt_failed(self, index: int) -> None:
        """A failed receipt for a send on step `index`: falls back if it is the open, sent step."""
        if (
            index == self.index
            and not self._state.status.is_terminal
            and self.phase is Phase.ACTIVE
        ):
            self.phase = Phase.FAILED

    def step_attempt(self, index: int) -> DeliveryAttempt | None:
        """The latest try of step `index`'s own send (not a resend)."""
        for attempt in reversed(self._state.deliveries):
            if attempt.step_index == index and attempt.kind is DeliveryKind.STEP:
                return attempt
        return None

    def settled_attempt(self, index: int) -> DeliveryAttempt | None:
        """Step `index`'s own send once it has an outcome (None while none or in flight)."""
        attempt = self.step_attempt(index)
        if attempt is None or attempt.status is DeliveryStatus.SENDING:
            return None
        return attempt

    def snapshot(self) -> StepSnapshot:
        return StepSnapshot(self.phase, self.deadline)

    def restore(self, snapshot: StepSnapshot) -> None:
        self.phase, self.deadline = snapshot.phase, snapshot.deadline
