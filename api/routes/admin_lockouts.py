"""/v1/admin: lockouts after too many failed checks, and the safe list, per application.

Same admin token as the rest of /v1/admin (`require_admin`). Destinations are given in
clear only in requests (`to`, parsed like a create: E.164 or an email address) and are
answered masked; the store keeps them as a keyed hash and masked.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.deps import LimiterDep, SecretsDep, StoreDep
from api.errors import (
    ApplicationNotFound,
    LockoutNotFound,
    SafeListEntryNotFound,
    field_error,
    invalid,
)
from api.lockouts import forget_safe_list
from api.routes.admin import ApplicationId, _application_id, _responses, require_admin
from api.services import lockouts
from otp.domain import Channel, Mode
from otp.domain.destinations import (
    InvalidDestinationError,
    looks_like_email,
    mask,
    parse_destination,
)
from otp.risk import policy as risk
from otp.store import safe_list as store_safe_list
from otp.store.applications import get_application
from otp.store.events import destination_hash
from otp.store.tables import Lockout, SafeListEntry

logger = logging.getLogger("otp.api")

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


def _normalized(to: str) -> str:
    """The destination as creates normalise it (E.164 or lower-cased email); 422 if not one."""
    channel = Channel.EMAIL if looks_like_email(to) else Channel.SMS
    try:
        return parse_destination(to, channel).value
    except InvalidDestinationError as exc:
        raise invalid([field_error("#/to", str(exc))]) from None


async def _risk_of(store: StoreDep, application_id: str) -> risk.RiskSettings:
    application = await get_application(store, application_id=_application_id(application_id))
    if application is None:
        raise ApplicationNotFound()
    return application.risk


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------- lockouts
class LockoutPublic(BaseModel):
    """A destination refused after too many wrong codes."""

    id: str | None = Field(
        description="`lck_...`; null for a counter at the cap with no lockout recorded."
    )
    mode: Mode
    to: str = Field(description="Masked, e.g. `+1415*****23`.")
    channel: str | None = None
    failed_count: int
    since: datetime | None = None
    until: datetime | None = Field(default=None, description="When it ends on its own.")


class LockoutList(BaseModel):
    lockouts: list[LockoutPublic] = Field(description="Lockouts in force, by id.")
    next_after: str | None = Field(
        default=None, description="Pass as `after` for the next page; null on the last one."
    )


class UnlockRequest(_Request):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"to": "+14155550123"}]}
    )

    to: str = Field(min_length=3, max_length=320, description="E.164 number or email address.")
    mode: Mode | None = Field(default=None, description="Only this mode; null: test and live.")


class Unlocked(BaseModel):
    to: str = Field(description="Masked.")
    lifted: list[LockoutPublic] = Field(description="What was lifted, per mode.")


def _lockout_public(row: Lockout) -> LockoutPublic:
    return LockoutPublic(
        id=row.id,
        mode=Mode(row.mode),
        to=row.to_masked,
        channel=row.channel,
        failed_count=row.failed_count,
        since=row.since,
        until=row.until,
    )


@router.get(
    "/applications/{application_id}/lockouts",
    response_model=LockoutList,
    summary="List destinations locked out after too many wrong codes",
    responses=_responses(401, 404, 422),
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
    settings = await _risk_of(store, application_id)
    rows, next_after = await lockouts.active_lockouts(
        store, limiter, settings, application_id=application_id, mode=mode, limit=limit, after=after
    )
    return LockoutList(lockouts=[_lockout_public(r) for r in rows], next_after=next_after)


@router.post(
    "/applications/{application_id}/lockouts/unlock",
    response_model=Unlocked,
    summary="Lift a destination's lockout",
    responses=_responses(401, 404, 422),
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
    settings = await _risk_of(store, application_id)
    to = _normalized(body.to)
    dst_hash = destination_hash(secrets.code_secret, to)
    modes = [body.mode] if body.mode is not None else [Mode.TEST, Mode.LIVE]
    done = await lockouts.unlock(
        store,
        limiter,
        settings,
        application_id=application_id,
        destination_hash=dst_hash,
        modes=modes,
        lifted_by=_actor(operator),
    )
    lifted = [
        _lockout_public(item.lockout)
        if item.lockout is not None
        else LockoutPublic(id=None, mode=item.mode, to=mask(to), failed_count=item.failed_count)
        for item in done
    ]
    if not lifted:
        raise LockoutNotFound()
    logger.info(
        "destination unlocked",
        extra={
            "event": "destination.unlocked",
            "application_id": application_id,
            "to": mask(to),
            "modes": sorted(item.mode.value for item in lifted),
            "operator": _actor(operator),
        },
    )
    return Unlocked(to=mask(to), lifted=lifted)


# --------------------------------------------------------------------- safe list
class SafeListAdd(_Request):
    """A destination exempt from velocity limits and conversion blocks."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"to": "+14155550123", "mode": "live", "note": "QA handset"}]
        },
    )

    to: str = Field(min_length=3, max_length=320, description="E.164 number or email address.")
    mode: Mode
    note: str = Field(default="", max_length=store_safe_list.NOTE_MAX)
    added_by: str | None = Field(
        default=None,
        max_length=store_safe_list.ACTOR_MAX,
        description="Who adds it; default the `X-Operator` header, else `admin`.",
    )

    @field_validator("note")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()


class SafeListEntryPublic(BaseModel):
    id: str = Field(examples=["sfl_k5xwq2m3b7c4d5e6f7g2h3j4"])
    application_id: str
    mode: Mode
    to: str = Field(description="Masked.")
    note: str
    added_by: str
    added_at: datetime
    removed_at: datetime | None = None
    removed_by: str | None = None
    active: bool


class SafeList(BaseModel):
    entries: list[SafeListEntryPublic] = Field(description="By id.")
    next_after: str | None = Field(
        default=None, description="Pass as `after` for the next page; null on the last one."
    )


def _entry_public(row: SafeListEntry) -> SafeListEntryPublic:
    return SafeListEntryPublic(
        id=row.id,
        application_id=row.application_id,
        mode=Mode(row.mode),
        to=row.to_masked,
        note=row.note,
        added_by=row.added_by,
        added_at=row.added_at,
        removed_at=row.removed_at,
        removed_by=row.removed_by,
        active=row.removed_at is None,
    )


@router.post(
    "/applications/{application_id}/safe-list",
    status_code=status.HTTP_201_CREATED,
    response_model=SafeListEntryPublic,
    summary="Put a destination on the safe list",
    responses=_responses(401, 404, 422),
)
async def add_safe_list_route(
    application_id: ApplicationId,
    body: SafeListAdd,
    store: StoreDep,
    secrets: SecretsDep,
    request: Request,
    operator: OperatorHeader = None,
) -> SafeListEntryPublic:
    """From now on (other API processes and workers within 5 s) verifications of this
    application and mode whose destinations are all on the list skip the velocity
    limits and conversion blocks. Already on the list: the entry in force is returned."""
    await _risk_of(store, application_id)
    to = _normalized(body.to)
    entry, _added = await store_safe_list.add_entry(
        store,
        application_id=application_id,
        mode=body.mode.value,
        destination_hash=destination_hash(secrets.code_secret, to),
        to_masked=mask(to),
        note=body.note,
        added_by=_actor(body.added_by, operator),
    )
    forget_safe_list(request)
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
    return _entry_public(entry)


@router.get(
    "/applications/{application_id}/safe-list",
    response_model=SafeList,
    summary="List the safe list",
    responses=_responses(401, 404, 422),
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
    await _risk_of(store, application_id)
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
    return SafeList(
        entries=[_entry_public(r) for r in rows], next_after=rows[-1].id if more else None
    )


@router.delete(
    "/applications/{application_id}/safe-list/{entry_id}",
    response_model=SafeListEntryPublic,
    summary="Take a destination off the safe list",
    responses=_responses(401, 404, 422),
)
async def remove_safe_list_route(
    application_id: ApplicationId,
    entry_id: Annotated[str, Path(description="`sfl_...`.")],
    store: StoreDep,
    request: Request,
    operator: OperatorHeader = None,
) -> SafeListEntryPublic:
    """The entry stays listed with `include_removed`, with who removed it and when.
    Removing an entry already removed returns it unchanged."""
    if not store_safe_list.ENTRY_ID_RE.match(entry_id):
        raise SafeListEntryNotFound()
    entry = await store_safe_list.remove_entry(
        store,
        entry_id=entry_id,
        application_id=_application_id(application_id),
        removed_by=_actor(operator),
    )
    if entry is None:
        raise SafeListEntryNotFound()
    forget_safe_list(request)
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
    return _entry_public(entry)
