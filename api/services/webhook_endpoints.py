"""Webhook endpoints of the caller's application and mode, and their deliveries.

An endpoint's `whsec_` secret is stored sealed. Live endpoints must be https and
resolve only to public addresses (checked here and again before every send); test
endpoints may use http and localhost. A test event takes the same durable path as the
real ones (a delivery workflow).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from temporalio.client import Client

from api.auth import Principal
from api.problems import (
    Conflict,
    WebhookEndpointNotFound,
    WebhookMessageNotFound,
    field_error,
    invalid,
)
from api.schemas.webhook_endpoints import WebhookEndpointCreate, WebhookEndpointUpdate
from otp.domain import Mode, WebhookEvent, webhook_message_id
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


async def checked_url(url: str, mode: Mode) -> str:
    """The URL if this service may post to it in `mode`, else a 422 problem."""
    try:
        host, port = check_url_syntax(url, mode)
        if mode is Mode.LIVE:
            await resolve_public(host, port)
    except UnsafeWebhookUrl as exc:
        raise invalid([field_error("#/url", str(exc), "unsafe_url")]) from None
    return url


async def get_endpoint(store: Store, *, principal: Principal, endpoint_id: str) -> WebhookEndpoint:
    row = await db.get_endpoint(
        store,
        endpoint_id=endpoint_id,
        application_id=principal.application_id,
        mode=str(principal.mode),
    )
    if row is None:
        raise WebhookEndpointNotFound()
    return row


async def create_endpoint(
    store: Store, secrets: Secrets, *, principal: Principal, body: WebhookEndpointCreate
) -> tuple[WebhookEndpoint, str]:
    """The new endpoint and its signing secret."""
    url = await checked_url(body.url, principal.mode)
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
    return row, secret


async def list_endpoints(store: Store, *, principal: Principal) -> list[WebhookEndpoint]:
    return await db.list_endpoints(
        store, application_id=principal.application_id, mode=str(principal.mode)
    )


async def read_secret(
    store: Store, secrets: Secrets, *, principal: Principal, endpoint_id: str
) -> str:
    row = await get_endpoint(store, principal=principal, endpoint_id=endpoint_id)
    return unseal(secrets, row.secret_sealed, purpose=SECRET_PURPOSE)


async def rotate_secret(
    store: Store,
    secrets: Secrets,
    *,
    principal: Principal,
    endpoint_id: str,
    grace_period_s: int,
) -> tuple[str, WebhookEndpoint]:
    """A new signing secret; the old one keeps signing beside it for `grace_period_s`."""
    await get_endpoint(store, principal=principal, endpoint_id=endpoint_id)
    secret = generate_secret()
    row = await db.rotate_endpoint_secret(
        store,
        endpoint_id=endpoint_id,
        application_id=principal.application_id,
        mode=str(principal.mode),
        secret_sealed=seal(secrets, secret, purpose=SECRET_PURPOSE),
        previous_expires_at=datetime.now(UTC) + timedelta(seconds=grace_period_s),
    )
    if row is None:
        raise WebhookEndpointNotFound()
    return secret, row


async def update_endpoint(
    store: Store, *, principal: Principal, endpoint_id: str, body: WebhookEndpointUpdate
) -> WebhookEndpoint:
    await get_endpoint(store, principal=principal, endpoint_id=endpoint_id)
    url = await checked_url(body.url, principal.mode) if body.url is not None else None
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
    return row


async def delete_endpoint(store: Store, *, principal: Principal, endpoint_id: str) -> None:
    if not await db.delete_endpoint(
        store,
        endpoint_id=endpoint_id,
        application_id=principal.application_id,
        mode=str(principal.mode),
    ):
        raise WebhookEndpointNotFound()


async def send_test(
    store: Store, client: Client, *, principal: Principal, endpoint_id: str, task_queue: str
) -> str:
    """Start the delivery of a `webhook.test` event to the endpoint; its message id."""
    row = await get_endpoint(store, principal=principal, endpoint_id=endpoint_id)
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
    await start_webhook_delivery(client, store, event, row, task_queue=task_queue)
    return event.id


async def list_messages(
    store: Store,
    *,
    principal: Principal,
    endpoint_id: str,
    verification_id: str | None,
    limit: int,
) -> list[WebhookMessage]:
    """Deliveries to the endpoint, newest first."""
    await get_endpoint(store, principal=principal, endpoint_id=endpoint_id)
    return await db.list_messages(
        store,
        application_id=principal.application_id,
        mode=str(principal.mode),
        endpoint_id=endpoint_id,
        verification_id=verification_id,
        limit=limit,
    )


async def list_attempts(
    store: Store, *, principal: Principal, endpoint_id: str, message_id: str
) -> list[WebhookAttempt]:
    """The HTTP attempts of one delivery."""
    await get_endpoint(store, principal=principal, endpoint_id=endpoint_id)
    message = await db.get_message(
        store,
        message_id=message_id,
        endpoint_id=endpoint_id,
        application_id=principal.application_id,
        mode=str(principal.mode),
    )
    if message is None:
        raise WebhookMessageNotFound()
    return await db.list_attempts(store, message_id=message_id, endpoint_id=endpoint_id)
