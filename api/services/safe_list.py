"""The safe list: destinations exempt from velocity limits and conversion blocks.

Given in clear only in requests, kept as a keyed hash and masked. Creates read the list
through `RiskCaches`: a change here clears this process's cache (other API processes and
workers see it within a few seconds).
"""

from __future__ import annotations

import logging

from api.problems import SafeListEntryNotFound
from api.schemas.lockouts import SafeListAdd
from api.services.applications import application_id_of, require_application
from api.services.lockouts import normalized_destination
from api.services.risk_caches import RiskCaches
from otp.domain import Mode
from otp.domain.destinations import mask
from otp.store import Store
from otp.store import safe_list as store_safe_list
from otp.store.events import destination_hash
from otp.store.tables import SafeListEntry

logger = logging.getLogger("otp.api")


async def add_entry(
    store: Store,
    caches: RiskCaches,
    *,
    secret: bytes,
    application_id: str,
    body: SafeListAdd,
    added_by: str,
) -> SafeListEntry:
    """Put the destination on the list; already on it: the entry in force."""
    await require_application(store, application_id)
    to = normalized_destination(body.to)
    entry, _added = await store_safe_list.add_entry(
        store,
        application_id=application_id,
        mode=body.mode.value,
        destination_hash=destination_hash(secret, to),
        to_masked=mask(to),
        note=body.note,
        added_by=added_by,
    )
    caches.safe_list.clear()
    logger.info(
        "safe list entry added",
        extra={
            "event": "safe_list.added",
            "application_id": application_id,
            "entry_id": entry.id,
            "mode": entry.mode,
            "to": entry.to_masked,
            "operator": entry.added_by,
        },
    )
    return entry


async def list_entries(
    store: Store,
    *,
    application_id: str,
    mode: Mode | None,
    include_removed: bool,
    limit: int,
    after: str | None,
) -> tuple[list[SafeListEntry], str | None]:
    """A page of entries by id, and the id to page on from (None: the last page)."""
    await require_application(store, application_id)
    rows = await store_safe_list.list_entries(
        store,
        application_id=application_id,
        mode=mode,
        include_removed=include_removed,
        limit=limit + 1,
        after=after,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1].id if more else None


async def remove_entry(
    store: Store, caches: RiskCaches, *, application_id: str, entry_id: str, removed_by: str
) -> SafeListEntry:
    """Take the entry off the list (an entry already removed is returned unchanged)."""
    if not store_safe_list.ENTRY_ID_RE.match(entry_id):
        raise SafeListEntryNotFound()
    entry = await store_safe_list.remove_entry(
        store,
        entry_id=entry_id,
        application_id=application_id_of(application_id),
        removed_by=removed_by,
    )
    if entry is None:
        raise SafeListEntryNotFound()
    caches.safe_list.clear()
    logger.info(
        "safe list entry removed",
        extra={
            "event": "safe_list.removed",
            "application_id": application_id,
            "entry_id": entry.id,
            "mode": entry.mode,
            "operator": entry.removed_by,
        },
    )
    return entry
