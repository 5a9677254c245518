"""/v1/admin: an application's alert rules and the alerts the worker raised.

Same admin token as the rest of /v1/admin (`require_admin`). `{}` as rules gives every
default; the worker's monitor evaluates them every `OTP_ALERTS_INTERVAL_S` seconds.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from api.deps import StoreDep, require_admin
from api.routes.admin import ApplicationId, admin_responses
from api.schemas.alerts import AlertList, AlertPublic
from api.services import alerts
from otp.alerts.rules import AlertRules
from otp.domain import Mode

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])

_BASE = "/applications/{application_id}"
AlertId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^alr_[a-z0-9]+$")]


@router.get(
    _BASE + "/alert-rules",
    response_model=AlertRules,
    summary="An application's alert rules",
    responses=admin_responses(401, 404),
)
async def get_rules_route(application_id: ApplicationId, store: StoreDep) -> AlertRules:
    """The rules in force (the defaults where none were set)."""
    return await alerts.get_rules(store, application_id=application_id)


@router.put(
    _BASE + "/alert-rules",
    response_model=AlertRules,
    summary="Replace an application's alert rules",
    responses=admin_responses(401, 404, 422),
)
async def put_rules_route(
    application_id: ApplicationId, body: AlertRules, store: StoreDep
) -> AlertRules:
    """Replace them whole (a field left out takes its default)."""
    return await alerts.put_rules(store, application_id=application_id, rules=body)


@router.get(
    _BASE + "/alerts",
    response_model=AlertList,
    summary="An application's alerts, newest first",
    responses=admin_responses(401, 404, 422),
)
async def list_alerts_route(
    application_id: ApplicationId,
    store: StoreDep,
    mode: Mode | None = None,
    state: Annotated[Literal["firing", "resolved"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AlertList:
    """Each alert with the evidence that raised it and, once resolved, the figures then."""
    return await alerts.list_alerts(
        store, application_id=application_id, mode=mode, state=state, limit=limit
    )


@router.get(
    _BASE + "/alerts/{alert_id}",
    response_model=AlertPublic,
    summary="One alert",
    responses=admin_responses(401, 404, 422),
)
async def get_alert_route(
    application_id: ApplicationId, alert_id: AlertId, store: StoreDep
) -> AlertPublic:
    return await alerts.get_alert(store, application_id=application_id, alert_id=alert_id)
