"""Limits on the store (SQLite or PostgreSQL): the default backend, no extra service.

Hits are rows of `rate_hits` (key, time, cost); counters are rows of `counters`. A hit
with an idempotency `member` also writes a `counters` row keyed by a hash of key and
member that expires with the hit's window: the member is "already recorded" while that
row lives, so no schema change was needed for idempotent members.

Exactness across processes: each `hit_all` is one transaction that first serialises
against every other hit on the same keys, then counts, then inserts.
- PostgreSQL: `pg_advisory_xact_lock` on a 64-bit hash of each key, in sorted order (no
  deadlock between calls naming the same keys in another order); READ COMMITTED then
  shows each statement everything the previous holder committed.
- SQLite: the transaction's first statement is a write (pruning the keys' old hits), so
  it takes the database's write lock before it reads; within a process `Store.writing()`
  queues writers without SQLite's sleeping busy handler.

One key should always be charged with the same windows: pruning drops a key's hits older
than the longest window of the call at hand.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, insert, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from otp.risk.limits import Budget, Decision, Hit
from otp.risk.limits.window import Entry, check_cost, decide, key_windows
from otp.store import Store
from otp.store.tables import Counter, RateHit, utcnow

__all__ = ["StoreLimiter", "purge"]

_HITS: Any = RateHit.__table__  # type: ignore[attr-defined]
_COUNTERS: Any = Counter.__table__  # type: ignore[attr-defined]
_KEY_MAX = 200  # both tables' key column
_MEMBER_PREFIX = "~member:"

_PRUNE = delete(_HITS).where(
    and_(_HITS.c.key == bindparam("b_key"), _HITS.c.at <= bindparam("b_cutoff"))
)
_LOCK = text("SELECT pg_advisory_xact_lock(:lock_id)")


def _fit(key: str) -> str:
    """The key as stored: long keys keep a readable head and a hash of the whole."""
    if len(key) <= _KEY_MAX:
        return key
    return key[:120] + "~" + hashlib.sha256(key.encode()).hexdigest()


def _member_key(key: str, member: str) -> str:
    digest = hashlib.sha256(key.encode() + b"\0" + member.encode()).hexdigest()
    return _MEMBER_PREFIX + digest


def _lock_id(key: str) -> int:
    """A signed 64-bit advisory lock id for a key (PostgreSQL's bigint)."""
    return int.from_bytes(
        hashlib.blake2b(b"otp.risk.limits:" + key.encode(), digest_size=8).digest(),
        "big",
        signed=True,
    )


class StoreLimiter:
    """Exact sliding-window limits and counters in the store's tables."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    # ------------------------------------------------------------------------ limits
    async def hit_all(
        self, hits: Sequence[Hit], *, cost: int = 1, member: str | None = None
    ) -> list[Decision]:
        check_cost(cost)
        if not hits:
            return []
        now = self._clock()
        windows = {_fit(k): w for k, w in key_windows(hits).items()}
        hits = [Hit(_fit(h.key), h.limit) for h in hits]
        members = {k: _member_key(k, member) for k in windows} if member is not None else {}
        async with self._store.writing() as conn:
            if not self._store.is_sqlite:
                for lock_id in sorted({_lock_id(k) for k in windows}):
                    await conn.execute(_LOCK, {"lock_id": lock_id})
            # The first statement writes: on SQLite it takes the write lock before any read.
            await conn.execute(
                _PRUNE, [{"b_key": k, "b_cutoff": now - w} for k, w in windows.items()]
            )
            known: set[str] = set()
            if members:
                await conn.execute(
                    delete(_COUNTERS).where(
                        _COUNTERS.c.key.in_(list(members.values())),
                        _COUNTERS.c.expires_at <= now,
                    )
                )
                present = set(
                    (
                        await conn.execute(
                            select(_COUNTERS.c.key).where(
                                _COUNTERS.c.key.in_(list(members.values()))
                            )
                        )
                    ).scalars()
                )
                known = {k for k, m in members.items() if m in present}
            entries = await _entries(conn, windows, now)
            ok, decisions = decide(hits, entries, known=known, cost=cost, now=now)
            fresh = [k for k in windows if k not in known]
            if ok and fresh:
                await conn.execute(
                    insert(_HITS), [{"key": k, "at": now, "cost": cost} for k in fresh]
                )
                if members:
                    stamp = utcnow()
                    await conn.execute(
                        insert(_COUNTERS),
                        [
                            {
                                "key": members[k],
                                "value": cost,
                                "expires_at": now + windows[k],
                                "updated_at": stamp,
                            }
                            for k in fresh
                        ],
                    )
        return decisions

    async def peek(self, hits: Sequence[Hit], *, cost: int = 1) -> list[Decision]:
        check_cost(cost)
        if not hits:
            return []
        now = self._clock()
        windows = {_fit(k): w for k, w in key_windows(hits).items()}
        async with self._store.engine.connect() as conn:
            entries = await _entries(conn, windows, now)
        _, decisions = decide(
            [Hit(_fit(h.key), h.limit) for h in hits], entries, known=set(), cost=cost, now=now
        )
        return decisions

    # ----------------------------------------------------------------------- budgets
    async def charge(
        self,
        budgets: Sequence[Budget],
        *,
        cost: int,
        member: str | None = None,
        force: bool = False,
    ) -> list[Decision]:
        check_cost(cost)
        if not budgets:
            return []
        now = self._clock()
        fitted = [Budget(_fit(b.key), b.limit, b.expires_at) for b in budgets]
        keys = list(dict.fromkeys(b.key for b in fitted))
        members = {k: _member_key(k, member) for k in keys} if member is not None else {}
        c = _COUNTERS.c
        async with self._store.writing() as conn:
            if not self._store.is_sqlite:
                for lock_id in sorted({_lock_id(k) for k in keys}):
                    await conn.execute(_LOCK, {"lock_id": lock_id})
            # The first statement writes: on SQLite it takes the write lock before any read.
            await conn.execute(
                delete(_COUNTERS).where(
                    c.key.in_(keys + list(members.values())),
                    c.expires_at.is_not(None),
                    c.expires_at <= now,
                )
            )
            rows = (
                await conn.execute(
                    select(c.key, c.value).where(c.key.in_(keys + list(members.values())))
                )
            ).all()
            values = {str(k): int(v) for k, v in rows}
            known = {k for k, m in members.items() if m in values}
            room = {
                b.key: force or b.key in known or values.get(b.key, 0) + cost <= b.limit.limit
                for b in fitted
            }
            ok = all(room.values())
            fresh = [b for b in dict((b.key, b) for b in fitted).values() if b.key not in known]
            if ok and fresh:
                stamp = utcnow()
                dialect = postgresql if not self._store.is_sqlite else sqlite
                for budget in fresh:
                    stmt = dialect.insert(_COUNTERS).values(
                        key=budget.key, value=cost, expires_at=budget.expires_at, updated_at=stamp
                    )
                    await conn.execute(
                        stmt.on_conflict_do_update(
                            index_elements=["key"],
                            set_={"value": c.value + cost, "updated_at": stamp},
                        )
                    )
                    values[budget.key] = values.get(budget.key, 0) + cost
                if members:
                    await conn.execute(
                        insert(_COUNTERS),
                        [
                            {
                                "key": members[b.key],
                                "value": cost,
                                "expires_at": b.expires_at,
                                "updated_at": stamp,
                            }
                            for b in fresh
                        ],
                    )
        return [
            Decision(
                limit=b.limit,
                allowed=room[b.key],
                remaining=max(0, b.limit.limit - values.get(b.key, 0)),
                reset_s=0 if room[b.key] else max(1, math.ceil(b.expires_at - now)),
            )
            for b in fitted
        ]

    # ---------------------------------------------------------------------- counters
    async def incr(self, key: str, *, ttl_s: int | None = None) -> int:
        now = self._clock()
        expires_at = None if ttl_s is None else now + ttl_s
        dialect = postgresql if not self._store.is_sqlite else sqlite
        c = _COUNTERS.c
        expired = and_(c.expires_at.is_not(None), c.expires_at <= now)
        stmt = dialect.insert(_COUNTERS).values(
            key=_fit(key), value=1, expires_at=expires_at, updated_at=utcnow()
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["key"],
            set_={
                "value": case((expired, 1), else_=c.value + 1),
                "expires_at": (
                    stmt.excluded.expires_at
                    if ttl_s is not None
                    else case((expired, None), else_=c.expires_at)
                ),
                "updated_at": stmt.excluded.updated_at,
            },
        ).returning(c.value)
        async with self._store.writing() as conn:
            value = (await conn.execute(stmt)).scalar_one()
        return int(value)

    async def get(self, key: str) -> int:
        now = self._clock()
        c = _COUNTERS.c
        query = select(c.value).where(
            c.key == _fit(key), or_(c.expires_at.is_(None), c.expires_at > now)
        )
        async with self._store.engine.connect() as conn:
            value = (await conn.execute(query)).scalar_one_or_none()
        return int(value or 0)

    async def reset(self, key: str) -> None:
        async with self._store.writing() as conn:
            await conn.execute(delete(_COUNTERS).where(_COUNTERS.c.key == _fit(key)))

    async def close(self) -> None:
        """Nothing to release: the store belongs to the caller."""


async def _entries(
    conn: AsyncConnection, windows: dict[str, int], now: float
) -> dict[str, list[Entry]]:
    """Each key's hits within its longest window, oldest first."""
    c = _HITS.c
    query = (
        select(c.key, c.at, c.cost)
        .where(c.key.in_(list(windows)), c.at > now - max(windows.values()))
        .order_by(c.at, c.id)
    )
    entries: dict[str, list[Entry]] = {k: [] for k in windows}
    for key, at, cost in (await conn.execute(query)).all():
        entries[key].append((float(at), int(cost)))
    return entries


async def purge(
    store: Store, *, older_than_s: float, clock: Callable[[], float] = time.time
) -> int:
    """Delete hits older than `older_than_s` (at least the longest window in use) and expired
    counters (member markers included); the number of rows deleted. For a periodic sweep:
    `hit_all` already prunes the keys it touches."""
    now = clock()
    async with store.writing() as conn:
        hits = await conn.execute(delete(_HITS).where(_HITS.c.at <= now - older_than_s))
        counters = await conn.execute(
            delete(_COUNTERS).where(
                _COUNTERS.c.expires_at.is_not(None), _COUNTERS.c.expires_at <= now
            )
        )
    return int(hits.rowcount or 0) + int(counters.rowcount or 0)
