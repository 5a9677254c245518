"""Searching the verification records, and a verification's event log.

Both read the store, which keeps finished verifications for `OTP_RECORD_RETENTION_DAYS`
(Temporal may forget them sooner), scoped to the caller's application and mode. A
destination is matched by its keyed hash: the store never holds it in clear.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from api.auth import Principal
from api.problems import VerificationNotFound, invalid, param_error
from otp.domain import Channel, Status
from otp.domain.destinations import (
    InvalidDestinationError,
    parse_any,
)
from otp.store import Store, VerificationRecord
from otp.store import records as store_records
from otp.store.events import destination_hash
from otp.store.records import SearchFilter
from otp.store.tables import VerificationEvent


@dataclass(frozen=True)
class Filters:
    """What a search asks for (each None: any)."""

    status: Status | None = None
    channel: Channel | None = None
    country: str | None = None
    to: str | None = None
    client_ref: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True)
class Query:
    """A search: its filters and the page asked for."""

    filters: Filters
    limit: int = 20
    cursor: str | None = None


def _destination_hash(secret: bytes, to: str) -> str:
    try:
        parsed = parse_any(to)
    except InvalidDestinationError as exc:
        raise invalid([param_error("query", "to", str(exc))]) from None
    return destination_hash(secret, parsed.value)


def require_zones(**times: datetime | None) -> None:
    """A 422 problem for a time without a time zone."""
    for name, value in times.items():
        if value is not None and value.tzinfo is None:
            raise invalid([param_error("query", name, "must carry a time zone (e.g. Z)")])


def search_filter(principal: Principal, secret: bytes, filters: Filters) -> SearchFilter:
    """The store's filter for a search; 422 for a destination that is none."""
    return SearchFilter(
        application_id=principal.application_id,
        mode=principal.mode.value,
        status=filters.status.value if filters.status else None,
        channel=filters.channel.value if filters.channel else None,
        country=filters.country.upper() if filters.country else None,
        destination_hash=_destination_hash(secret, filters.to) if filters.to else None,
        client_ref=filters.client_ref,
        created_from=filters.created_after,
        created_to=filters.created_before,
    )


async def search(
    store: Store,
    *,
    principal: Principal,
    secret: bytes,
    query: Query,
) -> tuple[list[VerificationRecord], str | None]:
    """A page of records, newest first, and the cursor of the next page (None: the last)."""
    filters, cursor = query.filters, query.cursor
    require_zones(created_after=filters.created_after, created_before=filters.created_before)
    if cursor is not None:
        try:
            store_records.decode_cursor(cursor)
        except ValueError:
            raise invalid([param_error("query", "cursor", "not a cursor from this API")]) from None
    where = search_filter(principal, secret, filters)
    return await store_records.search(store, where=where, limit=query.limit, cursor=cursor)


async def events(
    store: Store, *, principal: Principal, verification_id: str
) -> list[VerificationEvent]:
    """Every recorded state change, oldest first; 404 when none is recorded."""
    found = await store_records.list_events(
        store,
        verification_id=verification_id,
        application_id=principal.application_id,
        mode=principal.mode.value,
    )
    if not found:
        raise VerificationNotFound()
    return found
