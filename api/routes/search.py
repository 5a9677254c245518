"""/v1/verifications (GET): search the verification records; a verification's event log.

Both read the store, which keeps finished verifications for `OTP_RECORD_RETENTION_DAYS`
(Temporal may forget them sooner). Results are scoped to the key's application and mode.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from api.deps import AuthDep, SecretsDep, StoreDep
from api.schemas.problem import problem_responses
from api.schemas.search import (
    EventPublic,
    VerificationEvents,
    VerificationPage,
    VerificationSummary,
)
from api.schemas.verifications import VERIFICATION_ID_PATTERN
from api.services import search
from otp.domain import Channel, Status

router = APIRouter(prefix="/v1/verifications", tags=["search"])

MAX_PAGE = 100


async def _query(
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
) -> search.Query:
    filters = search.Filters(
        status=status,
        channel=channel,
        country=country,
        to=to,
        client_ref=client_ref,
        created_after=created_after,
        created_before=created_before,
    )
    return search.Query(filters=filters, limit=limit, cursor=cursor)


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
    query: Annotated[search.Query, Depends(_query)],
) -> VerificationPage:
    """Newest first, with cursor pagination. Finished verifications stay listed for the
    retention period."""
    rows, next_cursor = await search.search(
        store, principal=principal, secret=secrets.code_secret, query=query
    )
    return VerificationPage(data=[VerificationSummary.of(r) for r in rows], next_cursor=next_cursor)


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
    found = await search.events(store, principal=principal, verification_id=verification_id)
    return VerificationEvents(id=verification_id, data=[EventPublic.of(e) for e in found])
