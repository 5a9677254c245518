"""/v1/admin: an application's routing rules, and the route a destination would take.

Same admin token as the rest of /v1/admin (`require_admin`). A rule whose sender a
country's facts refuse is answered `sender-not-allowed` and not saved.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status

from api.deps import RiskCachesDep, SettingsDep, StoreDep, require_admin
from api.routes.admin import ApplicationId, admin_responses
from api.schemas.routing import (
    RouteExplanation,
    RoutingRuleList,
    RoutingRulePublic,
    RoutingRuleWrite,
)
from api.services import routing
from otp.domain import Channel

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])

RuleId = Annotated[str, Path(max_length=64, description="`rte_...`.")]


@router.get(
    "/applications/{application_id}/routing-rules",
    response_model=RoutingRuleList,
    summary="List routing rules",
    responses=admin_responses(401, 404),
)
async def list_rules_route(application_id: ApplicationId, store: StoreDep) -> RoutingRuleList:
    return RoutingRuleList(rules=await routing.list_rules(store, application_id))


@router.post(
    "/applications/{application_id}/routing-rules",
    status_code=status.HTTP_201_CREATED,
    response_model=RoutingRulePublic,
    summary="Create a routing rule",
    responses=admin_responses(401, 404, 409, 422),
)
async def create_rule_route(
    application_id: ApplicationId, body: RoutingRuleWrite, store: StoreDep, caches: RiskCachesDep
) -> RoutingRulePublic:
    """Providers in order and the sender for a channel, by country and number prefix."""
    return await routing.save_rule(store, caches, application_id, body)


@router.put(
    "/applications/{application_id}/routing-rules/{rule_id}",
    response_model=RoutingRulePublic,
    summary="Replace a routing rule",
    responses=admin_responses(401, 404, 409, 422),
)
async def update_rule_route(
    application_id: ApplicationId,
    rule_id: RuleId,
    body: RoutingRuleWrite,
    store: StoreDep,
    caches: RiskCachesDep,
) -> RoutingRulePublic:
    return await routing.save_rule(store, caches, application_id, body, rule_id=rule_id)


@router.delete(
    "/applications/{application_id}/routing-rules/{rule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a routing rule",
    responses=admin_responses(401, 404),
)
async def delete_rule_route(
    application_id: ApplicationId, rule_id: RuleId, store: StoreDep, caches: RiskCachesDep
) -> None:
    await routing.delete_rule(store, caches, application_id, rule_id)


@router.get(
    "/applications/{application_id}/routes/explain",
    response_model=RouteExplanation,
    summary="Explain the route of a destination",
    responses=admin_responses(401, 404, 422),
)
async def explain_route(
    application_id: ApplicationId,
    store: StoreDep,
    settings: SettingsDep,
    to: Annotated[str, Query(min_length=3, max_length=320, description="E.164 or email.")],
    channel: Annotated[Channel, Query()] = Channel.SMS,
) -> RouteExplanation:
    """The rule matched (or default, or global), the providers in order, the sender, and why."""
    return await routing.explain(store, settings, application_id, to=to, channel=channel)
