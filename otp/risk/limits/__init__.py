"""Sliding-window limits and counters shared by every API and worker process.

Two backends behind one interface: the store (SQLite or PostgreSQL, the default: no
extra service) and Redis (`OTP_LIMITS_BACKEND=redis`, `OTP_REDIS_URL`) for high request
rates. Both are exact at the threshold under concurrency: N+1 simultaneous hits on a
limit of N admit exactly N, whichever process they come from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Limit:
    """At most `limit` units per sliding `window_s` seconds. `name` is the policy name
    the API reports in `RateLimit-Policy` (e.g. "destination")."""

    name: str
    limit: int
    window_s: int


@dataclass(frozen=True)
class Hit:
    """One limit to charge: the key it counts under (e.g. `dst:<hash>`) and the limit."""

    key: str
    limit: Limit


@dataclass(frozen=True)
class Decision:
    """The outcome for one limit. `remaining` is what is left after this hit (if allowed);
    `reset_s` is how long until the window has room for this cost again (0 when allowed
    and room remains)."""

    limit: Limit
    allowed: bool
    remaining: int
    reset_s: int


@dataclass(frozen=True)
class Budget:
    """A running total with a cap until a fixed time (a calendar day's or month's spend):
    `key` counts under `limit.name` at most `limit.limit` units until `expires_at`
    (seconds since the epoch), when the total starts again from 0 under the next
    period's key."""

    key: str
    limit: Limit
    expires_at: float


class Limiter(Protocol):
    async def hit_all(
        self, hits: Sequence[Hit], *, cost: int = 1, member: str | None = None
    ) -> list[Decision]:
        """Charge every limit or none, atomically: when each has room for `cost`, record the
        hit under each key and allow; otherwise record nothing and refuse (the decisions say
        which limits were full). A `member` already recorded under a key (a retried
        delivery, a replayed request) is not counted again and is allowed."""
        ...

    async def peek(self, hits: Sequence[Hit], *, cost: int = 1) -> list[Decision]:
        """The decisions `hit_all` would give now, recording nothing."""
        ...

    async def charge(
        self,
        budgets: Sequence[Budget],
        *,
        cost: int,
        member: str | None = None,
        force: bool = False,
    ) -> list[Decision]:
        """Add `cost` to every budget or none, atomically: when each has room for it (or
        `force`: a correction that must count whatever the cap), add and allow; otherwise
        add nothing and refuse. A `member` already charged under a budget is not charged
        again and is allowed. A refused decision's `reset_s` is the time to `expires_at`.
        `get(budget.key)` reads a budget's total."""
        ...

    async def incr(self, key: str, *, ttl_s: int | None = None) -> int:
        """Add one to a counter (created at 0; `ttl_s` renews its expiry); the new value."""
        ...

    async def get(self, key: str) -> int:
        """A counter's value (0 when absent or expired)."""
        ...

    async def reset(self, key: str) -> None:
        """Delete a counter."""
        ...

    async def close(self) -> None: ...
