"""The safe list: destinations (test numbers, staff) of one application and mode that skip
the velocity limits and conversion blocks (see `otp.risk.policy` and `otp.risk.conversion_monitor` for which).

Only the keyed destination hash and the masked destination are kept, never the
destination. Removing an entry keeps its row (`removed_at`, `removed_by`): the list with
`include_removed` is the audit trail of who added and removed what, and when.
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlmodel import col, select

from otp.domain.ids import random_id
from otp.store import Store
from otp.store.tables import SafeListEntry, utcnow

ENTRY_ID_PREFIX = "sfl_"
ENTRY_ID_RE = re.compile(r"^sfl_[a-z2-7]{24}$")
NOTE_MAX = 200
ACTOR_MAX = 120


def new_entry_id() -> str:
    """`sfl_` + 24 random base32 characters (120 bits)."""
    return random_id(ENTRY_ID_PREFIX, random_bytes=15)


async def add_entry(
    store: Store,
    *,
    application_id: str,
    mode: str,
    destination_hash: str,
    to_masked: str,
    note: str = "",
    added_by: str = "admin",
    now: datetime | None = None,
) -> tuple[SafeListEntry, bool]:
    """The entry in force for this destination (added now unless there was one already)
    and whether this call added it."""
    async with store.write_guard(), store.session() as session:
        query = select(SafeListEntry).where(
            SafeListEntry.application_id == application_id,
            SafeListEntry.mode == str(mode),
            SafeListEntry.destination_hash == destination_hash,
            col(SafeListEntry.removed_at).is_(None),
        )
        existing = (await session.exec(query)).first()
        if existing is not None:
            return existing, False
        row = SafeListEntry(
            id=new_entry_id(),
            application_id=application_id,
            mode=str(mode),
            destination_hash=destination_hash,
            to_masked=to_masked[:320],
            note=note[:NOTE_MAX],
            added_by=added_by[:ACTOR_MAX],
            added_at=now or utcnow(),
        )
        session.add(row)
        await session.commit()
        await session.refresh(row)
        return row, True


async def list_entries(
    store: Store,
    *,
    application_id: str,
    mode: str | None = None,
    include_removed: bool = False,
    limit: int = 100,
    after: str | None = None,
) -> list[SafeListEntry]:
    """Entries by id (`after`: the last id of the previous page); removed ones on request."""
    query = select(SafeListEntry).where(SafeListEntry.application_id == application_id)
    if mode is not None:
        query = query.where(SafeListEntry.mode == str(mode))
    if not include_removed:
        query = query.where(col(SafeListEntry.removed_at).is_(None))
    if after is not None:
        query = query.where(col(SafeListEntry.id) > after)
    query = query.order_by(col(SafeListEntry.id)).limit(limit)
    async with store.session() as session:
        return list((await session.exec(query)).all())


async def safe_hashes(store: Store, *, application_id: str, mode: str) -> frozenset[str]:
    """The destination hashes on the safe list of (application, mode) now."""
    query = select(SafeListEntry.destination_hash).where(
        SafeListEntry.application_id == application_id,
        SafeListEntry.mode == str(mode),
        col(SafeListEntry.removed_at).is_(None),
    )
    async with store.session() as session:
        return frozenset((await session.exec(query)).all())


async def remove_entry(
    store: Store,
    *,
    entry_id: str,
    application_id: str,
    removed_by: str,
    now: datetime | None = None,
) -> SafeListEntry | None:
    """Take an entry off the list (its row stays, marked removed). None: no such entry for
    this application; an entry already removed is returned unchanged."""
    async with store.write_guard(), store.session() as session:
        query = select(SafeListEntry).where(
            SafeListEntry.id == entry_id, SafeListEntry.application_id == application_id
        )
        row = (await session.exec(query)).first()
        if row is None or row.removed_at is not None:
            return row
        row.removed_at = now or utcnow()
        row.removed_by = removed_by[:ACTOR_MAX]
        session.add(row)
        await session.commit()
        await session.refresh(row)
        return row
