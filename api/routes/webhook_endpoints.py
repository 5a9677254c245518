"""/v1/webhook-endpoints: where an application receives its verification events.

Scoped by the API key: an application's test key sees and manages only test endpoints,
its live key only live ones. Events are signed per Standard Webhooks with the endpoint's
`whsec_` secret (shown on create and at `GET .../{id}/secret`; stored sealed).
`POST .../{id}/secret/rotate` issues a new secret; the old one keeps signing beside it
(two space-separated signatures) for a grace period (default 24 h, 0 to 7 days), then is
dropped; rotating again replaces that previous secret.

Live endpoints must be https and resolve only to public addresses (checked here and
again before every send); test endpoints may use http and localhost, for local
development. Deliveries are durable workflows retried for about three days; a 410 Gone
answer disables the endpoint.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import AuthDep, ClientDep, SecretsDep, SettingsDep, StoreDep
from api.errors import (
    Conflict,
    WebhookEndpointNotFound,
    WebhookMessageNotFound,
    field_error,
    invalid,
)
from api.schemas import Problem
from otp.domain import Mode, WebhookEvent, WebhookEventType, webhook_message_id
from otp.security.sealing import seal, unseal
from otp.settings import Secrets
from otp.store import Store, WebhookAttempt, WebhookEndpoint, WebhookMessage
from otp.store import webhooks as db
from otp.webhooks.models import (
    SECRET_PURPOSE,
    TEST_EVENT_TYPE,
    UnsafeWebhookUrl,
    check_url_syntax,
    resolve_public,
)
from otp.webhooks.signing import generate_secret
from workflows.dispatch import start_webhook_delivery

router = APIRouter(prefix="/v1/webhook-endpoints", tags=["webhooks"])

_ID = Path(pattern=r"^ep_[a-z2-7]{1,60}$", description="Endpoint id (`ep_...`).")
EndpointId = Annotated[str, _ID]
MessageId = Annotated[str, Path(pattern=r"^msg_[a-z2-7]{1,60}$", description="`webhook-id`.")]


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        401: "Missing or invalid API key",
        404: "Unknown endpoint (or message) for this key",
        409: "The endpoint is disabled",
        422: "Invalid request (an unsafe URL included)",
        503: "Temporal unavailable (see Retry-After)",
    }
    return {code: {"model": Problem, "description": text[code]} for code in codes}


# ------------------------------------------------------------------- schemas
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebhookEndpointCreate(_Strict):
    url: str = Field(min_length=8, max_length=2048, examples=["https://example.com/hooks/otp"])
    description: str = Field(default="", max_length=300)
    event_types: list[WebhookEventType] = Field(
        default_factory=list,
        max_length=32,
        description="Event types to receive; empty: every event type.",
    )


class WebhookEndpointUpdate(_Strict):
    url: str | None = Field(default=None, min_length=8, max_length=2048)
    description: str | None = Field(default=None, max_length=300)
    event_types: list[WebhookEventType] | None = Field(default=None, max_length=32)
    enabled: bool | None = None


class WebhookEndpointPublic(BaseModel):
    id: str
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None = None
    mode: Mode
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: WebhookEndpoint) -> WebhookEndpointPublic:
        return cls(
            id=row.id,
            url=row.url,
            description=row.description,
            event_types=list(row.event_types),
            enabled=row.enabled,
            disabled_reason=row.disabled_reason,
            mode=Mode(row.mode),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class WebhookEndpointCreated(WebhookEndpointPublic):
    secret: str = Field(description="The `whsec_...` signing secret.")


class WebhookEndpointList(BaseModel):
    endpoints: list[WebhookEndpointPublic]


class WebhookEndpointSecret(BaseModel):
    secret: str


DEFAULT_GRACE_PERIOD_S = 86_400
MAX_GRACE_PERIOD_S = 7 * 86_400


class WebhookSecretRotate(_Strict):
    grace_period_s: int = Field(
        default=DEFAULT_GRACE_PERIOD_S,
        ge=0,
        le=MAX_GRACE_PERIOD_S,
        description="How long the old secret keeps signing beside the new one (0: not at all).",
    )


class WebhookSecretRotated(BaseModel):
    secret: str = Field(description="The new `whsec_...` signing secret.")
    previous_secret_expires_at: datetime | None = Field(
        description="Until when the old secret also signs (null: it stopped at once)."
    )


class WebhookTestSent(BaseModel):
    message_id: str
    event_type: str = TEST_EVENT_TYPE


class WebhookMessagePublic(BaseModel):
    message_id: str
    event_type: str
    verification_id: str | None = None
    status: str
    attempts: int
    last_status_code: int | None = None
    next_attempt_at: datetime | None = None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: WebhookMessage) -> WebhookMessagePublic:
        return cls(
            message_id=row.message_id,
            event_type=row.event_type,
            verification_id=row.verification_id,
            status=row.status,
            attempts=row.attempts,
            last_status_code=row.last_status_code,
            next_attempt_at=row.next_attempt_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class WebhookMessageList(BaseModel):
    messages: list[WebhookMessagePublic]


class WebhookAttemptPublic(BaseModel):
    attempt: int
    attempted_at: datetime
    status_code: int | None = None
    error: str | None = None
    duration_ms: int

    @classmethod
    def of(cls, row: WebhookAttempt) -> WebhookAttemptPublic:
        return cls(
            attempt=row.attempt,
            attempted_at=row.attempted_at,
            status_code=row.status_code,
            error=row.error,
            duration_ms=row.duration_ms,
        )


class WebhookAttemptList(BaseModel):
    attempts: list[WebhookAttemptPublic]


# ------------------------------------------------------------------- helpers
async def _checked_url(url: str, mode: Mode) -> str:
    """The URL if this service may post to it in `mode`, else a 422 problem."""
    try:
        host, port = check_url_syntax(url, mode)
        if mode is Mode.LIVE:
            await resolve_public(host, port)
    except UnsafeWebhookUrl as exc:
        raise invalid([field_error("#/url", str(exc), "unsafe_url")]) from None
    return url


async def _endpoint(store: Store, principal: AuthDep, endpoint_id: str) -> WebhookEndpoint:
    row = await db.get_endpoint(
        store,
        endpoint_id=endpoint_id,
        application_id=principal.application_id,
        mode=str(principal.mode),
    )
    if row is None:
        raise WebhookEndpointNotFound()
    return row


def _secret_of(secrets: Secrets, row: WebhookEndpoint) -> str:
    return unseal(secrets, row.secret_sealed, purpose=SECRET_PURPOSE)


# -------------------------------------------------------------------- routes
@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookEndpointCreated,
    summary="Register a webhook endpoint",
    responses=_problems(401, 422),
)
async def create_endpoint(
    body: WebhookEndpointCreate, principal: AuthDep, store: StoreDep, secrets: SecretsDep
) -> WebhookEndpointCreated:
    url = await _checked_url(body.url, principal.mode)
    secret = generate_secret()
    row = await db.create_endpoint(
        store,
        application_id=principal.application_id,
        mode=str(principal.mode),
        url=url,
        description=body.description,
        event_types=[str(t) for t in body.event_types],
        secret_sealed=seal(secrets, secret, purpose=SECRET_PURPOSE),
    )
    return WebhookEndpointCreated(**WebhookEndpointPublic.of(row).model_dump(), secret=secret)


@router.get(
    "",
    response_model=WebhookEndpointList,
    summary="List webhook endpoints",
    responses=_problems(401),
)
async def list_endpoints(principal: AuthDep, store: StoreDep) -> WebhookEndpointList:
    rows = await db.list_endpoints(
        store, application_id=principal.application_id, mode=str(principal.mode)
    )
    return WebhookEndpointList(endpoints=[WebhookEndpointPublic.of(row) for row in rows])


@router.get(
    "/{endpoint_id}",
    response_model=WebhookEndpointPublic,
    summary="Read a webhook endpoint",
    responses=_problems(401, 404, 422),
)
async def get_endpoint(
    endpoint_id: EndpointId, principal: AuthDep, store: StoreDep
) -> WebhookEndpointPublic:
    return WebhookEndpointPublic.of(await _endpoint(store, principal, endpoint_id))


@router.get(
    "/{endpoint_id}/secret",
    response_model=WebhookEndpointSecret,
    summary="Read an endpoint's signing secret",
    responses=_problems(401, 404, 422),
)
async def get_secret(
    endpoint_id: EndpointId, principal: AuthDep, store: StoreDep, secrets: SecretsDep
) -> WebhookEndpointSecret:
    row = await _endpoint(store, principal, endpoint_id)
    return WebhookEndpointSecret(secret=_secret_of(secrets, row))


@router.post(
    "/{endpoint_id}/secret/rotate",
    response_model=WebhookSecretRotated,
    summary="Issue a new signing secret; the old one also signs for a grace period",
    responses=_problems(401, 404, 422),
)
async def rotate_secret(
    endpoint_id: EndpointId,
    principal: AuthDep,
    store: StoreDep,
    secrets: SecretsDep,
    body: WebhookSecretRotate | None = None,
) -> WebhookSecretRotated:
    grace = (body or WebhookSecretRotate()).grace_period_s
    await _endpoint(store, principal, endpoint_id)
    secret = generate_secret()
    row = await db.rotate_endpoint_secret(
        store,
        endpoint_id=endpoint_id,
        application_id=principal.application_id,
        mode=str(principal.mode),
        secret_sealed=seal(secrets, secret, purpose=SECRET_PURPOSE),
        previous_expires_at=datetime.now(UTC) + timedelta(seconds=grace),
    )
    if row is None:
        raise WebhookEndpointNotFound()
    return WebhookSecretRotated(
        secret=secret, previous_secret_expires_at=row.previous_secret_expires_at
    )


@router.patch(
    "/{endpoint_id}",
    response_model=WebhookEndpointPublic,
    summary="Change a webhook endpoint (URL, description, event types, enabled)",
    responses=_problems(401, 404, 422),
)
async def update_endpoint(
    endpoint_id: EndpointId, body: WebhookEndpointUpdate, principal: AuthDep, store: StoreDep
) -> WebhookEndpointPublic:
    await _endpoint(store, principal, endpoint_id)
    url = await _checked_url(body.url, principal.mode) if body.url is not None else None
    row = await db.update_endpoint(
        store,
        endpoint_id=endpoint_id,
        application_id=principal.application_id,
        mode=str(principal.mode),
        url=url,
        description=body.description,
        event_types=None if body.event_types is None else [str(t) for t in body.event_types],
        enabled=body.enabled,
        disabled_reason="disabled by the application",
    )
    if row is None:
        raise WebhookEndpointNotFound()
    return WebhookEndpointPublic.of(row)


@router.delete(
    "/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a webhook endpoint (pending deliveries stop)",
    responses=_problems(401, 404, 422),
)
async def delete_endpoint(endpoint_id: EndpointId, principal: AuthDep, store: StoreDep) -> Response:
    deleted = await db.delete_endpoint(
        store,
        endpoint_id=endpoint_id,
        application_id=principal.application_id,
        mode=str(principal.mode),
    )
    if not deleted:
        raise WebhookEndpointNotFound()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{endpoint_id}/test",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookTestSent,
    summary="Send a `webhook.test` event to this endpoint (same durable path as real events)",
    responses=_problems(401, 404, 409, 422, 503),
)
async def send_test(
    endpoint_id: EndpointId,
    principal: AuthDep,
    store: StoreDep,
    client: ClientDep,
    settings: SettingsDep,
) -> WebhookTestSent:
    row = await _endpoint(store, principal, endpoint_id)
    if not row.enabled:
        raise Conflict("The endpoint is disabled; enable it before sending a test event.")
    event = WebhookEvent(
        id=webhook_message_id(row.id, f"test:{uuid.uuid4().hex}"),
        type=TEST_EVENT_TYPE,
        application_id=principal.application_id,
        mode=principal.mode,
        occurred_at=datetime.now(UTC),
        data={"endpoint_id": row.id, "message": "A test event from the OTP service."},
    )
    await start_webhook_delivery(client, store, event, row, task_queue=settings.task_queue)
    return WebhookTestSent(message_id=event.id)


@router.get(
    "/{endpoint_id}/messages",
    response_model=WebhookMessageList,
    summary="Deliveries to this endpoint, newest first",
    responses=_problems(401, 404, 422),
)
async def list_messages(
    endpoint_id: EndpointId,
    principal: AuthDep,
    store: StoreDep,
    verification_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> WebhookMessageList:
    await _endpoint(store, principal, endpoint_id)
    rows = await db.list_messages(
        store,
        application_id=principal.application_id,
        mode=str(principal.mode),
        endpoint_id=endpoint_id,
        verification_id=verification_id,
        limit=limit,
    )
    return WebhookMessageList(messages=[WebhookMessagePublic.of(row) for row in rows])


@router.get(
    "/{endpoint_id}/messages/{message_id}/attempts",
    response_model=WebhookAttemptList,
    summary="HTTP attempts of one delivery",
    responses=_problems(401, 404, 422),
)
async def list_attempts(
    endpoint_id: EndpointId, message_id: MessageId, principal: AuthDep, store: StoreDep
) -> WebhookAttemptList:
    await _endpoint(store, principal, endpoint_id)
    message = await db.get_message(
        store,
        message_id=message_id,
        endpoint_id=endpoint_id,
        application_id=principal.application_id,
        mode=str(principal.mode),
    )
    if message is None:
        raise WebhookMessageNotFound()
    rows = await db.list_attempts(store, message_id=message_id, endpoint_id=endpoint_id)
    return WebhookAttemptList(attempts=[WebhookAttemptPublic.of(row) for row in rows])
