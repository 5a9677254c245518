"""/v1/admin: lockouts after too many failed checks, and the safe list, per application.

Same admin token as the rest of /v1/admin (`require_admin`). Destinations are given in
clear only in requests (`to`, parsed like a create: E.164 or an email address) and are
answered masked; the store keeps them as a keyed hash and masked.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, status

from api.deps import LimiterDep, RiskCachesDep, SecretsDep, StoreDep, require_admin
from api.routes.admin import ApplicationId, admin_responses
from api.schemas.lockouts import (
    LockoutList,
    LockoutPublic,
    SafeList,
    SafeListAdd,
    SafeListEntryPublic,
    Unlocked,
    UnlockRequest,
)
from api.services import lockouts, safe_list
from otp.domain import Mode

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])

OperatorHeader = Annotated[
    str | None,
    Header(
        alias="X-Operator",
        max_length=120,
        description="Who is making the change, recorded with it (default `admin`).",
    ),
]


def _actor(*candidates: str | None) -> str:
    for candidate in candidates:
        if candidate is not None and candidate.strip():
            return candidate.strip()[:120]
    return "admin"


@router.get(
    "/applications/{application_id}/lockouts",
    response_model=LockoutList,
    summary="List destinations locked out after too many wrong codes",
    responses=admin_responses(401, 404, 422),
)
async def list_lockouts_route(
    application_id: ApplicationId,
    store: StoreDep,
    limiter: LimiterDep,
    mode: Annotated[Mode | None, Query(description="Only this mode's lockouts.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    after: Annotated[str | None, Query(max_length=64, description="An id to page on from.")] = None,
) -> LockoutList:
    """Lockouts in force: recorded, not lifted, not yet ended, and whose failed-check
    counter is still at the cap (the counter is what refuses a destination). A page may
    hold fewer than `limit` lockouts; follow `next_after` to the end."""
    rows, next_after = await lockouts.list_lockouts(
        store, limiter, application_id=application_id, mode=mode, limit=limit, after=after
    )
    return LockoutList(lockouts=[LockoutPublic.of(r) for r in rows], next_after=next_after)


@router.post(
    "/applications/{application_id}/lockouts/unlock",
    response_model=Unlocked,
    summary="Lift a destination's lockout",
    responses=admin_responses(401, 404, 422),
)
async def unlock_route(
    application_id: ApplicationId,
    body: UnlockRequest,
    store: StoreDep,
    limiter: LimiterDep,
    secrets: SecretsDep,
    operator: OperatorHeader = None,
) -> Unlocked:
    """Forget the destination's failed checks and end its lockout now, in `mode` (default:
    both modes). New verifications and checks for it work again at once."""
    to, done = await lockouts.unlock_destination(
        store,
        limiter,
        secret=secrets.code_secret,
        application_id=application_id,
        to=body.to,
        mode=body.mode,
        lifted_by=_actor(operator),
    )
    lifted = [
        LockoutPublic.of(item.lockout)
        if item.lockout is not None
        else LockoutPublic(id=None, mode=item.mode, to=to, failed_count=item.failed_count)
        for item in done
    ]
    return Unlocked(to=to, lifted=lifted)


@router.post(
    "/applications/{application_id}/safe-list",
    status_code=status.HTTP_201_CREATED,
    response_model=SafeListEntryPublic,
    summary="Put a destination on the safe list",
    responses=admin_responses(401, 404, 422),
)
async def add_safe_list_route(
    application_id: ApplicationId,
    body: SafeListAdd,
    store: StoreDep,
    secrets: SecretsDep,
    caches: RiskCachesDep,
    operator: OperatorHeader = None,
) -> SafeListEntryPublic:
    """From now on (other API processes and workers within 5 s) verifications of this
    application and mode whose destinations are all on the list skip the velocity
    limits and conversion blocks. Already on the list: the entry in force is returned."""
    entry = await safe_list.add_entry(
        store,
        caches,
        secret=secrets.code_secret,
        application_id=application_id,
        body=body,
        added_by=_actor(body.added_by, operator),
    )
    return SafeListEntryPublic.of(entry)


@router.get(
    "/applications/{application_id}/safe-list",
    response_model=SafeList,
    summary="List the safe list",
    responses=admin_responses(401, 404, 422),
)
async def list_safe_list_route(
    application_id: ApplicationId,
    store: StoreDep,
    mode: Annotated[Mode | None, Query(description="Only this mode's entries.")] = None,
    include_removed: Annotated[
        bool, Query(description="Also removed entries (the audit trail).")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    after: Annotated[str | None, Query(max_length=64, description="An id to page on from.")] = None,
) -> SafeList:
    rows, next_after = await safe_list.list_entries(
        store,
        application_id=application_id,
        mode=mode,
        include_removed=include_removed,
        limit=limit,
        after=after,
    )
    return SafeList(entries=[SafeListEntryPublic.of(r) for r in rows], next_after=next_after)


@router.delete(
    "/applications/{application_id}/safe-list/{entry_id}",
    response_model=SafeListEntryPublic,
    summary="Take a destination off the safe list",
    responses=admin_responses(401, 404, 422),
)
async def remove_safe_list_route(
    application_id: ApplicationId,
    entry_id: Annotated[str, Path(description="`sfl_...`.")],
    store: StoreDep,
    caches: RiskCachesDep,
    operator: OperatorHeader = None,
) -> SafeListEntryPublic:
    """The entry stays listed with `include_removed`, with who removed it and when.
    Removing an entry already removed returns it unchanged."""
    entry = await safe_list.remove_entry(
        store,
        caches,
        application_id=application_id,
        entry_id=entry_id,
        removed_by=_actor(operator),
    )
    return SafeListEntryPublic.of(entry)
