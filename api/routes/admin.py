"""/v1/admin: applications, their API keys and risk blocks, for operators holding the admin token.

Authenticated by `Authorization: Bearer <OTP_ADMIN_TOKEN>` (compared in constant time).
In dev an unset token is generated once into the data dir (`admin_token`); in production
without OTP_ADMIN_TOKEN every admin route answers 404, like a route that does not exist.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.auth import ApiKeyAuthenticator
from api.deps import StoreDep
from api.errors import (
    AdminUnauthorized,
    ApiKeyNotFound,
    ApplicationNotFound,
    RiskBlockNotFound,
    field_error,
    invalid,
)
from api.schemas import problem_responses
from otp.applications.keys import APPLICATION_ID_RE, KEY_ID_RE
from otp.applications.model import (
    BRAND_MAX,
    NAME_MAX,
    ApiKeyPublic,
    ApplicationDefaults,
    ApplicationPolicy,
    ApplicationPublic,
)
from otp.domain import Channel, Mode
from otp.risk.policy import RiskSettings
from otp.settings import Settings, admin_token
from otp.store import risk_blocks
from otp.store.applications import (
    ApplicationNotFoundError,
    create_api_key,
    create_application,
    get_application,
    list_api_keys,
    list_applications,
    revoke_api_key,
    update_application,
)
from otp.store.tables import RiskBlock, utcnow

logger = logging.getLogger("otp.api")

_admin_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="AdminToken",
    description="The admin token (`OTP_ADMIN_TOKEN`; in dev, the file `admin_token` in the "
    "data dir).",
)


def admin_token_digest(settings: Settings) -> bytes | None:
    """SHA-256 of the admin token, or None when the admin API is switched off."""
    token = admin_token(settings)
    return None if token is None else hashlib.sha256(token.encode()).digest()


async def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_admin_bearer)],
) -> None:
    state = request.app.state
    if not hasattr(state, "admin_token_digest"):
        state.admin_token_digest = admin_token_digest(state.settings)
    expected: bytes | None = state.admin_token_digest
    if expected is None:
        raise StarletteHTTPException(status_code=404, detail="Not Found")
    presented = hashlib.sha256((credentials.credentials if credentials else "").encode()).digest()
    if not hmac.compare_digest(expected, presented):
        raise AdminUnauthorized()


router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])

_DESCRIPTIONS = {
    401: "Missing or invalid admin token",
    404: "Unknown application or key (or the admin API is off)",
}


def _responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    responses = problem_responses(*statuses)
    for code, text in _DESCRIPTIONS.items():
        if code in responses:
            responses[code]["description"] = text
    return responses


ApplicationId = Annotated[
    str, Path(description="`app_...`, or `default`.", examples=["app_k5xwq2m3b7c4d5e6f7g2h3j4kq"])
]
KeyId = Annotated[str, Path(description="`key_...`.", examples=["key_k5xwq2m3b7c4d5e6f7g2h3j4kq"])]


def _application_id(value: str) -> str:
    if not APPLICATION_ID_RE.match(value):
        raise ApplicationNotFound()
    return value


def _authenticator(request: Request) -> ApiKeyAuthenticator:
    authenticator: ApiKeyAuthenticator = request.app.state.authenticator
    return authenticator


# ------------------------------------------------------------------------- schemas
class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApplicationCreate(_Request):
    """A new application. Its defaults fill in what verification requests leave out."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Acme web shop",
                    "brand": "Acme",
                    "defaults": {
                        "channels": [
                            {"channel": "sms", "timeout_s": 30},
                            {"channel": "voice", "timeout_s": 60},
                        ],
                        "code_length": 6,
                        "locale": "en",
                    },
                    "allowed_channels": ["sms", "voice", "email"],
                }
            ]
        },
    )

    name: str = Field(min_length=1, max_length=NAME_MAX, description="For people, not shown.")
    brand: str = Field(default="", max_length=BRAND_MAX, description="Name shown in messages.")
    defaults: ApplicationDefaults = Field(default_factory=ApplicationDefaults)
    allowed_channels: list[Channel] = Field(
        default_factory=list, description="Channels the application may use; empty: all."
    )
    risk: RiskSettings = Field(
        default_factory=RiskSettings, description="Fraud controls; left out: the safe defaults."
    )

    @model_validator(mode="after")
    def _consistent(self) -> ApplicationCreate:
        ApplicationPolicy(defaults=self.defaults, allowed_channels=self.allowed_channels)
        return self


class ApplicationUpdate(_Request):
    """Fields to change; a field left out keeps its value. `defaults` is replaced whole."""

    name: str | None = Field(default=None, min_length=1, max_length=NAME_MAX)
    brand: str | None = Field(default=None, max_length=BRAND_MAX)
    defaults: ApplicationDefaults | None = None
    allowed_channels: list[Channel] | None = None
    risk: RiskSettings | None = Field(
        default=None, description="Fraud controls, replaced whole (`{}`: the safe defaults)."
    )


class ApplicationList(BaseModel):
    applications: list[ApplicationPublic] = Field(description="Oldest first.")
    next_after: str | None = Field(
        default=None, description="Pass as `after` for the next page; null on the last one."
    )


class ApiKeyCreate(_Request):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"mode": "test", "name": "staging"}]}
    )

    mode: Mode = Field(description="`test` (sandbox, no real delivery) or `live`.")
    name: str = Field(default="", max_length=NAME_MAX, description="For people, e.g. `staging`.")


class ApiKeyCreated(ApiKeyPublic):
    """A new key. `key` is shown this once: only its hash is kept."""

    key: str = Field(examples=["otp_test_3kZ9..."])


class ApiKeyList(BaseModel):
    keys: list[ApiKeyPublic] = Field(description="Oldest first, revoked ones included.")


# -------------------------------------------------------------------------- routes
@router.post(
    "/applications",
    status_code=status.HTTP_201_CREATED,
    response_model=ApplicationPublic,
    summary="Create an application",
    responses=_responses(401, 422),
)
async def create_application_route(body: ApplicationCreate, store: StoreDep) -> ApplicationPublic:
    """A new application with its own `app_...` id, defaults and allowed channels."""
    application = await create_application(
        store,
        name=body.name,
        brand=body.brand,
        defaults=body.defaults,
        allowed_channels=body.allowed_channels,
        risk=body.risk,
    )
    logger.info("application created", extra={"application_id": application.id})
    return application


@router.get(
    "/applications",
    response_model=ApplicationList,
    summary="List applications",
    responses=_responses(401, 422),
)
async def list_applications_route(
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    after: Annotated[str | None, Query(max_length=64, description="An id to page on from.")] = None,
) -> ApplicationList:
    applications = await list_applications(store, limit=limit + 1, after=after)
    more = len(applications) > limit
    applications = applications[:limit]
    return ApplicationList(
        applications=applications, next_after=applications[-1].id if more else None
    )


@router.get(
    "/applications/{application_id}",
    response_model=ApplicationPublic,
    summary="Read an application",
    responses=_responses(401, 404),
)
async def get_application_route(
    application_id: ApplicationId, store: StoreDep
) -> ApplicationPublic:
    application = await get_application(store, application_id=_application_id(application_id))
    if application is None:
        raise ApplicationNotFound()
    return application


@router.patch(
    "/applications/{application_id}",
    response_model=ApplicationPublic,
    summary="Change an application",
    responses=_responses(401, 404, 422),
)
async def update_application_route(
    application_id: ApplicationId, body: ApplicationUpdate, store: StoreDep, request: Request
) -> ApplicationPublic:
    """Change name, brand, defaults or allowed channels; API processes apply it within 10 s."""
    try:
        application = await update_application(
            store,
            application_id=_application_id(application_id),
            name=body.name,
            brand=body.brand,
            defaults=body.defaults,
            allowed_channels=body.allowed_channels,
            risk=body.risk,
        )
    except ValidationError as exc:
        raise invalid(
            [field_error("#/allowed_channels", str(e.get("msg", "invalid"))) for e in exc.errors()]
        ) from None
    if application is None:
        raise ApplicationNotFound()
    _authenticator(request).forget(application_id=application.id)
    logger.info("application updated", extra={"application_id": application.id})
    return application


@router.post(
    "/applications/{application_id}/keys",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    summary="Create an API key",
    responses=_responses(401, 404, 422),
)
async def create_key_route(
    application_id: ApplicationId, body: ApiKeyCreate, store: StoreDep
) -> ApiKeyCreated:
    """Issue a key for the application. The response is the only place the key appears."""
    try:
        created = await create_api_key(
            store, application_id=_application_id(application_id), mode=body.mode, name=body.name
        )
    except ApplicationNotFoundError:
        raise ApplicationNotFound() from None
    logger.info(
        "api key created",
        extra={
            "application_id": application_id,
            "key_id": created.api_key.id,
            "mode": body.mode.value,
        },
    )
    return ApiKeyCreated(key=created.key, **created.api_key.model_dump())


@router.get(
    "/applications/{application_id}/keys",
    response_model=ApiKeyList,
    summary="List an application's API keys",
    responses=_responses(401, 404),
)
async def list_keys_route(application_id: ApplicationId, store: StoreDep) -> ApiKeyList:
    """Hints (prefix and last four characters) only: keys are never shown again."""
    if await get_application(store, application_id=_application_id(application_id)) is None:
        raise ApplicationNotFound()
    return ApiKeyList(keys=await list_api_keys(store, application_id=application_id))


@router.post(
    "/applications/{application_id}/keys/{key_id}/revoke",
    response_model=ApiKeyPublic,
    summary="Revoke an API key",
    responses=_responses(401, 404),
)
async def revoke_key_route(
    application_id: ApplicationId, key_id: KeyId, store: StoreDep, request: Request
) -> ApiKeyPublic:
    """Refuse the key from now on (within 10 s on other API processes). Repeats are harmless."""
    if not KEY_ID_RE.match(key_id):
        raise ApiKeyNotFound()
    revoked = await revoke_api_key(
        store, key_id=key_id, application_id=_application_id(application_id)
    )
    if revoked is None:
        raise ApiKeyNotFound()
    _authenticator(request).forget(key_id=key_id)
    logger.info("api key revoked", extra={"application_id": application_id, "key_id": key_id})
    return revoked


# --------------------------------------------------------------------- risk blocks
class RiskBlockPublic(BaseModel):
    """A country or number prefix refused for one application and mode."""

    id: str = Field(examples=["blk_k5xwq2m3b7c4d5e6f7g2h3j4"])
    application_id: str
    mode: Mode
    scope: risk_blocks.BlockScope = Field(description="`country` or `prefix`.")
    value: str = Field(
        description="`US`, or a number prefix such as `+1415555`; an automatic block shows "
        "only a short range (`+1415`) and matches the blocked range by its keyed hash."
    )
    reason: str
    automatic: bool = Field(description="Made by conversion monitoring (else by an operator).")
    level: int = Field(description="The how-manieth automatic block of this scope (escalation).")
    created_at: datetime
    expires_at: datetime | None = Field(description="Null: until lifted.")
    lifted_at: datetime | None = None
    lifted_by: str | None = None
    active: bool


class RiskBlockList(BaseModel):
    blocks: list[RiskBlockPublic] = Field(description="Newest first.")


class RiskBlockCreate(_Request):
    """A manual block: new verifications to it end `blocked` before any send."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "mode": "live",
                    "scope": "prefix",
                    "value": "+1415555",
                    "reason": "SMS pumping from this range",
                    "duration_s": 86400,
                }
            ]
        },
    )

    mode: Mode
    scope: risk_blocks.BlockScope
    value: str = Field(max_length=20, description="`US`, or `+` and 4 to 14 digits.")
    reason: str = Field(default="blocked by an operator", min_length=1, max_length=200)
    duration_s: int | None = Field(
        default=None, ge=60, le=366 * 86400, description="Null: until lifted."
    )

    @model_validator(mode="after")
    def _value(self) -> RiskBlockCreate:
        self.value = risk_blocks.normalize_value(self.scope, self.value)
        return self


class RiskBlockLift(_Request):
    lifted_by: str = Field(default="admin", min_length=1, max_length=120, description="Who.")

    @field_validator("lifted_by")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip() or "admin"


def _block_public(block: RiskBlock) -> RiskBlockPublic:
    return RiskBlockPublic.model_validate(
        {**block.model_dump(), "active": risk_blocks.is_active(block)}
    )


async def _require_application(store: StoreDep, application_id: str) -> str:
    if await get_application(store, application_id=_application_id(application_id)) is None:
        raise ApplicationNotFound()
    return application_id


@router.get(
    "/applications/{application_id}/risk-blocks",
    response_model=RiskBlockList,
    summary="List an application's risk blocks",
    responses=_responses(401, 404, 422),
)
async def list_risk_blocks_route(
    application_id: ApplicationId,
    store: StoreDep,
    mode: Annotated[Mode | None, Query(description="Only this mode's blocks.")] = None,
    scope: Annotated[risk_blocks.BlockScope | None, Query()] = None,
    recent_days: Annotated[
        int, Query(ge=0, le=366, description="Also ended blocks made this many days back.")
    ] = 7,
) -> RiskBlockList:
    """Blocks in force, and those made in the last `recent_days` (lifted or expired)."""
    await _require_application(store, application_id)
    since = utcnow() - timedelta(days=recent_days)
    found = await risk_blocks.list_blocks(
        store, application_id=application_id, mode=mode, scope=scope, since=since
    )
    return RiskBlockList(blocks=[_block_public(b) for b in found])


def _forget_blocks(request: Request) -> None:
    """This process's creates see a block change at once (others within a few seconds)."""
    request.app.state.__dict__.pop("risk_blocks_cache", None)


@router.post(
    "/applications/{application_id}/risk-blocks",
    status_code=status.HTTP_201_CREATED,
    response_model=RiskBlockPublic,
    summary="Block a country or number prefix",
    responses=_responses(401, 404, 422),
)
async def create_risk_block_route(
    application_id: ApplicationId, body: RiskBlockCreate, store: StoreDep, request: Request
) -> RiskBlockPublic:
    """From now on, sends of this application and mode to the country or prefix are
    refused before any provider call, and their verifications end `blocked`."""
    await _require_application(store, application_id)
    block = await risk_blocks.create_block(
        store,
        application_id=application_id,
        mode=body.mode,
        scope=body.scope,
        value=body.value,
        reason=body.reason,
        automatic=False,
        duration_s=body.duration_s,
    )
    _forget_blocks(request)
    logger.info(
        "risk block created",
        extra={
            "event": "risk_block.created",
            "application_id": application_id,
            "block_id": block.id,
            "mode": block.mode,
            "scope": block.scope,
            "value": block.value,
            "automatic": False,
        },
    )
    return _block_public(block)


@router.post(
    "/applications/{application_id}/risk-blocks/{block_id}/lift",
    response_model=RiskBlockPublic,
    summary="Lift a risk block",
    responses=_responses(401, 404, 422),
)
async def lift_risk_block_route(
    application_id: ApplicationId,
    block_id: Annotated[str, Path(description="`blk_...`.")],
    store: StoreDep,
    request: Request,
    body: RiskBlockLift | None = None,
) -> RiskBlockPublic:
    """End the block now (a block already ended is returned as it is). Lifting resets
    nothing else: the next automatic block of the same scope lasts longer."""
    if not risk_blocks.BLOCK_ID_RE.match(block_id):
        raise RiskBlockNotFound()
    lifted = await risk_blocks.lift_block(
        store,
        block_id=block_id,
        application_id=_application_id(application_id),
        lifted_by=(body or RiskBlockLift()).lifted_by,
    )
    if lifted is None:
        raise RiskBlockNotFound()
    _forget_blocks(request)
    logger.info(
        "risk block lifted",
        extra={
            "event": "risk_block.lifted",
            "application_id": application_id,
            "block_id": lifted.id,
            "scope": lifted.scope,
            "value": lifted.value,
        },
    )
    return _block_public(lifted)
