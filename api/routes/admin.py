"""/v1/admin: applications, their API keys and risk blocks, for operators holding the admin token.

Authenticated by `Authorization: Bearer <OTP_ADMIN_TOKEN>` (compared in constant time).
In dev an unset token is generated once into the data dir (`admin_token`); in production
without OTP_ADMIN_TOKEN every admin route answers 404, like a route that does not exist.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, status

from api.deps import AuthenticatorDep, RiskCachesDep, StoreDep, require_admin
from api.schemas.applications import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyList,
    ApplicationCreate,
    ApplicationList,
    ApplicationUpdate,
)
from api.schemas.problem import problem_responses
from api.schemas.risk_blocks import RiskBlockCreate, RiskBlockLift, RiskBlockList, RiskBlockPublic
from api.services import applications, risk_blocks
from otp.applications.model import ApiKeyPublic, ApplicationPublic
from otp.domain import Mode
from otp.store.risk_blocks import BlockScope

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])

_DESCRIPTIONS = {
    401: "Missing or invalid admin token",
    404: "Unknown application or key (or the admin API is off)",
}


def admin_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The problems of an admin route (the admin token's 401, the application's 404)."""
    return problem_responses(*statuses, described=_DESCRIPTIONS)


ApplicationId = Annotated[
    str, Path(description="`app_...`, or `default`.", examples=["app_k5xwq2m3b7c4d5e6f7g2h3j4kq"])
]
KeyId = Annotated[str, Path(description="`key_...`.", examples=["key_k5xwq2m3b7c4d5e6f7g2h3j4kq"])]


@router.post(
    "/applications",
    status_code=status.HTTP_201_CREATED,
    response_model=ApplicationPublic,
    summary="Create an application",
    responses=admin_responses(401, 422),
)
async def create_application_route(body: ApplicationCreate, store: StoreDep) -> ApplicationPublic:
    """A new application with its own `app_...` id, defaults and allowed channels."""
    return await applications.create_application(store, body)


@router.get(
    "/applications",
    response_model=ApplicationList,
    summary="List applications",
    responses=admin_responses(401, 422),
)
async def list_applications_route(
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    after: Annotated[str | None, Query(max_length=64, description="An id to page on from.")] = None,
) -> ApplicationList:
    found, next_after = await applications.list_applications(store, limit=limit, after=after)
    return ApplicationList(applications=found, next_after=next_after)


@router.get(
    "/applications/{application_id}",
    response_model=ApplicationPublic,
    summary="Read an application",
    responses=admin_responses(401, 404),
)
async def get_application_route(
    application_id: ApplicationId, store: StoreDep
) -> ApplicationPublic:
    return await applications.require_application(store, application_id)


@router.patch(
    "/applications/{application_id}",
    response_model=ApplicationPublic,
    summary="Change an application",
    responses=admin_responses(401, 404, 422),
)
async def update_application_route(
    application_id: ApplicationId,
    body: ApplicationUpdate,
    store: StoreDep,
    authenticator: AuthenticatorDep,
) -> ApplicationPublic:
    """Change name, brand, defaults or allowed channels; API processes apply it within 10 s."""
    return await applications.update_application(
        store, authenticator, application_id=application_id, body=body
    )


@router.post(
    "/applications/{application_id}/keys",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    summary="Create an API key",
    responses=admin_responses(401, 404, 422),
)
async def create_key_route(
    application_id: ApplicationId, body: ApiKeyCreate, store: StoreDep
) -> ApiKeyCreated:
    """Issue a key for the application. The response is the only place the key appears."""
    return await applications.create_key(store, application_id=application_id, body=body)


@router.get(
    "/applications/{application_id}/keys",
    response_model=ApiKeyList,
    summary="List an application's API keys",
    responses=admin_responses(401, 404),
)
async def list_keys_route(application_id: ApplicationId, store: StoreDep) -> ApiKeyList:
    """Hints (prefix and last four characters) only: keys are never shown again."""
    return ApiKeyList(keys=await applications.list_keys(store, application_id=application_id))


@router.post(
    "/applications/{application_id}/keys/{key_id}/revoke",
    response_model=ApiKeyPublic,
    summary="Revoke an API key",
    responses=admin_responses(401, 404),
)
async def revoke_key_route(
    application_id: ApplicationId,
    key_id: KeyId,
    store: StoreDep,
    authenticator: AuthenticatorDep,
) -> ApiKeyPublic:
    """Refuse the key from now on (within 10 s on other API processes). Repeats are harmless."""
    return await applications.revoke_key(
        store, authenticator, application_id=application_id, key_id=key_id
    )


@router.get(
    "/applications/{application_id}/risk-blocks",
    response_model=RiskBlockList,
    summary="List an application's risk blocks",
    responses=admin_responses(401, 404, 422),
)
async def list_risk_blocks_route(
    application_id: ApplicationId,
    store: StoreDep,
    mode: Annotated[Mode | None, Query(description="Only this mode's blocks.")] = None,
    scope: Annotated[BlockScope | None, Query()] = None,
    recent_days: Annotated[
        int, Query(ge=0, le=366, description="Also ended blocks made this many days back.")
    ] = 7,
) -> RiskBlockList:
    """Blocks in force, and those made in the last `recent_days` (lifted or expired)."""
    found = await risk_blocks.list_blocks(
        store, application_id=application_id, mode=mode, scope=scope, recent_days=recent_days
    )
    return RiskBlockList(blocks=[RiskBlockPublic.of(b) for b in found])


@router.post(
    "/applications/{application_id}/risk-blocks",
    status_code=status.HTTP_201_CREATED,
    response_model=RiskBlockPublic,
    summary="Block a country or number prefix",
    responses=admin_responses(401, 404, 422),
)
async def create_risk_block_route(
    application_id: ApplicationId,
    body: RiskBlockCreate,
    store: StoreDep,
    caches: RiskCachesDep,
) -> RiskBlockPublic:
    """From now on, sends of this application and mode to the country or prefix are
    refused before any provider call, and their verifications end `blocked`."""
    block = await risk_blocks.create_block(store, caches, application_id=application_id, body=body)
    return RiskBlockPublic.of(block)


@router.post(
    "/applications/{application_id}/risk-blocks/{block_id}/lift",
    response_model=RiskBlockPublic,
    summary="Lift a risk block",
    responses=admin_responses(401, 404, 422),
)
async def lift_risk_block_route(
    application_id: ApplicationId,
    block_id: Annotated[str, Path(description="`blk_...`.")],
    store: StoreDep,
    caches: RiskCachesDep,
    body: RiskBlockLift | None = None,
) -> RiskBlockPublic:
    """End the block now (a block already ended is returned as it is). Lifting resets
    nothing else: the next automatic block of the same scope lasts longer."""
    lifted = await risk_blocks.lift_block(
        store,
        caches,
        application_id=application_id,
        block_id=block_id,
        lifted_by=(body or RiskBlockLift()).lifted_by,
    )
    return RiskBlockPublic.of(lifted)
