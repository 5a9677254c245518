"""Lockouts: destinations refused after `max_failed_checks` wrong codes.

The failed-check counter in the limiter (`otp.risk.policy.failed_checks_key`) decides whether a
destination is refused, on either limiter backend; a row here is written when a counter
reaches the cap, so that operators can list lockouts (masked) and lift them. A lockout is
in force from `since` until `until` (the application's `lockout_duration_s` later) unless
lifted. Rows keep the destination only as its keyed hash and masked. Every query is
scoped by application id (and mode where given).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, or_
from sqlmodel import col, select

from otp.domain.ids import random_id
from otp.store import Store
from otp.store.tables import Lockout, utcnow

LOCKOUT_ID_PREFIX = "lck_"
LOCKOUT_ID_RE = re.compile(r"^lck_[a-z2-7]{24}$")


def new_lockout_id() -> str:
    """`lck_` + 24 random base32 characters (120 bits)."""
    return random_id(LOCKOUT_ID_PREFIX, random_bytes=15)


def is_active(lockout: Lockout, now: datetime | None = None) -> bool:
    return lockout.lifted_at is None and lockout.until > (now or utcnow())


def _active(now: datetime) -> ColumnElement[bool]:
    return and_(col(Lockout.lifted_at).is_(None), col(Lockout.until) > now)


async def record_lockout(
    store: Store,
    *,
    application_id: str,
    mode: str,
    destination_hash: str,
    to_masked: str,
    channel: str | None,
    failed_count: int,
    duration_s: int,
    now: datetime | None = None,
) -> Lockout:
    """A new lockout, in force from now for `duration_s`."""
    since = now or utcnow()
    row = Lockout(
        id=new_lockout_id(),
        application_id=application_id,
        mode=str(mode),
        destination_hash=destination_hash,
        to_masked=to_masked[:320],
        channel=channel,
        failed_count=failed_count,
        since=since,
        until=since + timedelta(seconds=duration_s),
    )
    async with store.write_guard(), store.session() as session:
        session.add(row)
        await session.commit()
    return row


async def list_active_lockouts(
    store: Store,
    *,
    application_id: str,
    mode: str | None = None,
    destination_hash: str | None = None,
    limit: int = 100,
    after: str | None = None,
    now: datetime | None = None,
) -> list[Lockout]:
    """Lockouts in force now, by id (`after`: the last id of the previous page)."""
    query = select(Lockout).where(
        Lockout.application_id == application_id, _active(now or utcnow())
    )
    if mode is not None:
        query = query.where(Lockout.mode == str(mode))
    if destination_hash is not None:
        query = query.where(Lockout.destination_hash == destination_hash)
    if after is not None:
        query = query.where(col(Lockout.id) > after)
    query = query.order_by(col(Lockout.id)).limit(limit)
    async with store.session() as session:
        return list((await session.exec(query)).all())


async def lift_lockouts(
    store: Store,
    *,
    application_id: str,
    modes: Sequence[str],
    destination_hash: str,
    lifted_by: str,
    now: datetime | None = None,
) -> list[Lockout]:
    """End every lockout in force of this destination in these modes; the rows lifted."""
    now = now or utcnow()
    async with store.write_guard(), store.session() as session:
        query = select(Lockout).where(
            Lockout.application_id == application_id,
            col(Lockout.mode).in_([str(m) for m in modes]),
            Lockout.destination_hash == destination_hash,
            _active(now),
        )
        rows = list((await session.exec(query)).all())
        for row in rows:
            row.lifted_at = now
            row.lifted_by = lifted_by[:120]
            session.add(row)
        await session.commit()
        for row in rows:
            await session.refresh(row)
        return rows


async def purge_expired_lockouts(
    store: Store, *, older_than: timedelta, now: datetime | None = None
) -> int:
    """Delete lockouts that ended (expired or lifted) more than `older_than` ago; how many."""
    cutoff = (now or utcnow()) - older_than
    statement = delete(Lockout).where(
        or_(
            col(Lockout.until) < cutoff,
            and_(col(Lockout.lifted_at).is_not(None), col(Lockout.lifted_at) < cutoff),
        )
    )
    async with store.writing() as conn:
        result = await conn.execute(statement)
    return int(result.rowcount or 0)
