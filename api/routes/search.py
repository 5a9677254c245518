"""/v1/verifications (GET): search the verification records; a verification's event log.

Both read the store, which keeps finished verifications for `OTP_RECORD_RETENTION_DAYS`
(Temporal may forget them sooner). Results are scoped to the key's application and mode.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import AuthDep, SecretsDep, StoreDep
from api.errors import VerificationNotFound, invalid, param_error
from api.schemas import (
    VERIFICATION_ID_PATTERN,
    EventPublic,
    VerificationEvents,
    VerificationPage,
    VerificationSummary,
    problem_responses,
)
from otp.domain import Channel, Status
from otp.domain.destinations import (
    InvalidDestinationError,
    looks_like_email,
    parse_email,
    parse_phone,
)
from otp.store import VerificationRecord
from otp.store import records as store_records
from otp.store.events import destination_hash
from otp.store.records import SearchFilter

logger = logging.getLogger("otp.api")

router = APIRouter(prefix="/v1/verifications", tags=["search"])

MAX_PAGE = 100


def summary_of(record: VerificationRecord) -> VerificationSummary:
    return VerificationSummary(
        id=record.id,
        status=Status(record.status),
        reason=record.reason,
        mode=record.mode,
        channel=Channel(record.channel) if record.channel else None,
        channels=[Channel(c) for c in record.channels],
        country=record.country,
        to=record.to_masked,
        client_ref=record.client_ref,
        created_at=record.created_at,
        expires_at=record.expires_at,
        finished_at=record.finished_at,
        attempts_used=record.attempts_used,
        sends=record.sends,
        delivered=record.delivered,
        fallbacks=record.fallbacks,
        time_to_verify_ms=record.time_to_verify_ms,
    )


def _destination_hash(secret: bytes, to: str) -> str:
    try:
        parsed = parse_email(to) if looks_like_email(to) else parse_phone(to)
    except InvalidDestinationError as exc:
        raise invalid([param_error("query", "to", str(exc))]) from None
    return destination_hash(secret, parsed.value)


@router.get(
    "",
    response_model=VerificationPage,
    summary="Search verifications",
    responses=problem_responses(401, 422),
)
async def search_verifications(
    principal: AuthDep,
    store: StoreDep,
    secrets: SecretsDep,
    status: Annotated[Status | None, Query(description="Only this status.")] = None,
    channel: Annotated[
        Channel | None, Query(description="Only verifications whose last channel is this.")
    ] = None,
    country: Annotated[
        str | None,
        Query(pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2 of the phone number."),
    ] = None,
    to: Annotated[
        str | None,
        Query(
            min_length=3,
            max_length=320,
            description="Exact destination (E.164 phone or email). Matched by keyed hash: "
            "the store never holds it in clear.",
        ),
    ] = None,
    client_ref: Annotated[str | None, Query(max_length=128)] = None,
    created_after: Annotated[
        datetime | None, Query(description="Created at or after (ISO 8601).")
    ] = None,
    created_before: Annotated[datetime | None, Query(description="Created before.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    cursor: Annotated[
        str | None, Query(max_length=200, description="`next_cursor` of the previous page.")
    ] = None,
) -> VerificationPage:
    """Newest first, with cursor pagination. Finished verifications stay listed for the
    retention period."""
    for name, value in (("created_after", created_after), ("created_before", created_before)):
        if value is not None and value.tzinfo is None:
            raise invalid([param_error("query", name, "must carry a time zone (e.g. Z)")])
    if cursor is not None:
        try:
            store_records.decode_cursor(cursor)
        except ValueError:
            raise invalid([param_error("query", "cursor", "not a cursor from this API")]) from None
    where = SearchFilter(
        application_id=principal.application_id,
        mode=principal.mode.value,
        status=status.value if status else None,
        channel=channel.value if channel else None,
        country=country.upper() if country else None,
        destination_hash=_destination_hash(secrets.code_secret, to) if to else None,
        client_ref=client_ref,
        created_from=created_after,
        created_to=created_before,
    )
    rows, next_cursor = await store_records.search(store, where=where, limit=limit, cursor=cursor)
    return VerificationPage(data=[summary_of(r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/{verification_id}/events",
    response_model=VerificationEvents,
    summary="A verification's event log",
    responses=problem_responses(401, 404),
)
async def verification_events(
    verification_id: Annotated[str, Path(pattern=VERIFICATION_ID_PATTERN)],
    principal: AuthDep,
    store: StoreDep,
) -> VerificationEvents:
    """Every recorded state change, oldest first: created, send attempted, sent, delivered,
    failed, fallback, check failed and the terminal one. No code, destinations masked."""
    events = await store_records.list_events(
        store,
        verification_id=verification_id,
        application_id=principal.application_id,
        mode=principal.mode.value,
    )
    if not events:
        raise VerificationNotFound()
    return VerificationEvents(
        id=verification_id,
        data=[
            EventPublic(
                type=e.type,
                occurred_at=e.occurred_at,
                channel=e.channel,
                provider=e.provider,
                provider_message_id=e.provider_message_id,
                country=e.country,
                to=e.to_masked,
                step_index=e.step_index,
                reason=e.reason,
            )
            for e in events
        ],
    )
