"""ResendGate: the send counter, the resend cooldown and its backoff.

A plain class used by VerificationWorkflow; it keeps the sends and the next resend time
in the verification's state (the `state` query shows them) and counts the resends.

Rules:
- Every delivery (a step's own send or a resend) counts one send and restarts the
  cooldown; a resend needs a free send (`max_sends`) and the cooldown to have passed.
- The cooldown is `resend_cooldown_s`, times `resend_backoff` for every resend so far
  (1.0, the default and what older histories carry, keeps it constant), capped at an
  hour (or at the base cooldown if that is longer).
- A send in flight, or a step whose own send has not started yet, counts as "just
  sent": a resend then would stand in for that send.
- A refused resend puts the counters and the cooldown back as they were.
- Deterministic and sandbox-safe: the standard library, temporalio and otp.domain only;
  the caller passes the time in.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime, timedelta

from temporalio.exceptions import ApplicationError

from otp.domain import DeliveryKind, ErrorType, VerificationState
from workflows.delivery import Refusal

MAX_COOLDOWN_S = 3600


@dataclasses.dataclass(frozen=True)
class ResendSnapshot:
    """The counters and the cooldown before a delivery, to put back if it is refused."""

    sends: int
    resends: int
    next_resend_at: datetime | None


class ResendGate:
    """Counts sends and resends and decides whether a resend may go now."""

    def __init__(self, state: VerificationState, *, cooldown_s: int, backoff: float) -> None:
        self._state = state
        self._base_s = cooldown_s
        self._backoff = backoff
        self.resends = 0

    def cooldown_s(self) -> float:
        """The wait before the next resend, given the resends so far."""
        base = self._base_s
        if self.resends == 0 or self._backoff == 1.0:
            return base
        grown = base * self._backoff**self.resends
        return min(grown, max(base, MAX_COOLDOWN_S))

    @property
    def sends_remaining(self) -> int:
        return max(0, self._state.max_sends - self._state.sends)

    def count(self, kind: DeliveryKind, started: datetime) -> None:
        """A delivery of `kind` starts at `started`: one send more, the cooldown restarts."""
        self._state.sends += 1
        if kind is DeliveryKind.RESEND:
            self.resends += 1
        self._state.next_resend_at = started + timedelta(seconds=self.cooldown_s())

    def require_allowed(self, now: datetime, *, busy: bool) -> None:
        """Refuse a resend at `now` (`busy`: a send is in flight or the step's is due)."""
        if self._state.sends >= self._state.max_sends:
            raise ApplicationError(
                "the maximum number of sends for this verification was reached",
                type=ErrorType.MAX_SENDS,
                non_retryable=True,
            )
        ready_at = self._state.next_resend_at
        if ready_at is None or now < ready_at or busy:
            wait_s = (ready_at - now).total_seconds() if ready_at else self._base_s
            raise ApplicationError(
                "a code was sent moments ago; wait before resending",
                {"retry_after_s": max(1, math.ceil(wait_s))},
                type=ErrorType.RESEND_COOLDOWN,
                non_retryable=True,
            )

    def snapshot(self) -> ResendSnapshot:
        return ResendSnapshot(self._state.sends, self.resends, self._state.next_resend_at)

    def restore(self, snapshot: ResendSnapshot) -> None:
        self._state.sends = snapshot.sends
        self.resends = snapshot.resends
        self._state.next_resend_at = snapshot.next_resend_at


def refusal_error(refusal: Refusal | None) -> ApplicationError:
    """The failure of a resend a risk control refused: its code, limit and retry delay,
    never its reason text."""
    refusal = refusal or Refusal()
    return ApplicationError(
        "the resend was refused by a risk control",
        {"code": refusal.code, "limit": refusal.limit, "retry_after_s": refusal.retry_after_s},
        type=ErrorType.RESEND_REFUSED,
        non_retryable=True,
    )
