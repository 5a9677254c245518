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

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status

from api.deps import AuthDep, ClientDep, SecretsDep, SettingsDep, StoreDep
from api.schemas.problem import problem_responses
from api.schemas.webhook_endpoints import (
    WebhookAttemptList,
    WebhookAttemptPublic,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointList,
    WebhookEndpointPublic,
    WebhookEndpointSecret,
    WebhookEndpointUpdate,
    WebhookMessageList,
    WebhookMessagePublic,
    WebhookSecretRotate,
    WebhookSecretRotated,
    WebhookTestSent,
)
from api.services import webhook_endpoints as endpoints

router = APIRouter(prefix="/v1/webhook-endpoints", tags=["webhooks"])

_ID = Path(pattern=r"^ep_[a-z2-7]{1,60}$", description="Endpoint id (`ep_...`).")
EndpointId = Annotated[str, _ID]
MessageId = Annotated[str, Path(pattern=r"^msg_[a-z2-7]{1,60}$", description="`webhook-id`.")]

_DESCRIBED = {
    401: "Missing or invalid API key",
    404: "Unknown endpoint (or message) for this key",
    409: "The endpoint is disabled",
    422: "Invalid request (an unsafe URL included)",
    503: "Temporal unavailable (see Retry-After)",
}


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    return problem_responses(*codes, described=_DESCRIBED)


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
    row, secret = await endpoints.create_endpoint(store, secrets, principal=principal, body=body)
    return WebhookEndpointCreated(**WebhookEndpointPublic.of(row).model_dump(), secret=secret)


@router.get(
    "",
    response_model=WebhookEndpointList,
    summary="List webhook endpoints",
    responses=_problems(401),
)
async def list_endpoints(principal: AuthDep, store: StoreDep) -> WebhookEndpointList:
    rows = await endpoints.list_endpoints(store, principal=principal)
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
    row = await endpoints.get_endpoint(store, principal=principal, endpoint_id=endpoint_id)
    return WebhookEndpointPublic.of(row)


@router.get(
    "/{endpoint_id}/secret",
    response_model=WebhookEndpointSecret,
    summary="Read an endpoint's signing secret",
    responses=_problems(401, 404, 422),
)
async def get_secret(
    endpoint_id: EndpointId, principal: AuthDep, store: StoreDep, secrets: SecretsDep
) -> WebhookEndpointSecret:
    secret = await endpoints.read_secret(
        store, secrets, principal=principal, endpoint_id=endpoint_id
    )
    return WebhookEndpointSecret(secret=secret)


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
    secret, row = await endpoints.rotate_secret(
        store,
        secrets,
        principal=principal,
        endpoint_id=endpoint_id,
        grace_period_s=(body or WebhookSecretRotate()).grace_period_s,
    )
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
    row = await endpoints.update_endpoint(
        store, principal=principal, endpoint_id=endpoint_id, body=body
    )
    return WebhookEndpointPublic.of(row)


@router.delete(
    "/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a webhook endpoint (pending deliveries stop)",
    responses=_problems(401, 404, 422),
)
async def delete_endpoint(endpoint_id: EndpointId, principal: AuthDep, store: StoreDep) -> Response:
    await endpoints.delete_endpoint(store, principal=principal, endpoint_id=endpoint_id)
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
    message_id = await endpoints.send_test(
        store,
        client,
        principal=principal,
        endpoint_id=endpoint_id,
        task_queue=settings.task_queue,
    )
    return WebhookTestSent(message_id=message_id)


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
    rows = await endpoints.list_messages(
        store,
        principal=principal,
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
    rows = await endpoints.list_attempts(
        store, principal=principal, endpoint_id=endpoint_id, message_id=message_id
    )
    return WebhookAttemptList(attempts=[WebhookAttemptPublic.of(row) for row in rows])
