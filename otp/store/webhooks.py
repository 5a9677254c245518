"""Webhook endpoints, messages (one per event per endpoint) and attempts (one per HTTP try).

Every endpoint and message query is scoped by application id AND mode: an endpoint
created with a test key is invisible to the live key of the same application. Inserts
of messages and attempts are idempotent on their unique keys, so an activity retried
after a crash, or a repeated dispatch, writes nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from otp.domain.ids import random_id
from otp.store import Store
from otp.store.tables import WebhookAttempt, WebhookEndpoint, WebhookMessage, utcnow

ENDPOINT_ID_PREFIX = "ep_"
PENDING, SUCCEEDED, FAILED, DISABLED = "pending", "succeeded", "failed", "disabled"


def new_endpoint_id() -> str:
    return random_id(ENDPOINT_ID_PREFIX, random_bytes=15)


def _subscribed(endpoint: WebhookEndpoint, event_type: str) -> bool:
    """An empty `event_types` list subscribes to every event."""
    return not endpoint.event_types or event_type in endpoint.event_types


# ------------------------------------------------------------------ endpoints


def _endpoint_query(
    endpoint_id: str, application_id: str, mode: str
) -> SelectOfScalar[WebhookEndpoint]:
    """The endpoint with this id, within the caller's application and mode."""
    return select(WebhookEndpoint).where(
        WebhookEndpoint.id == endpoint_id,
        WebhookEndpoint.application_id == application_id,
        WebhookEndpoint.mode == mode,
    )


async def create_endpoint(
    store: Store,
    *,
    application_id: str,
    mode: str,
    url: str,
    secret_sealed: str,
    description: str = "",
    event_types: Sequence[str] = (),
    endpoint_id: str | None = None,
) -> WebhookEndpoint:
    row = WebhookEndpoint(
        id=endpoint_id or new_endpoint_id(),
        application_id=application_id,
        mode=mode,
        url=url,
        description=description,
        secret_sealed=secret_sealed,
        event_types=list(dict.fromkeys(event_types)),
    )
    async with store.session() as session:
        session.add(row)
        await session.commit()
    return row


async def list_endpoints(
    store: Store, *, application_id: str, mode: str, enabled_only: bool = False
) -> list[WebhookEndpoint]:
    """Oldest first."""
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.application_id == application_id, WebhookEndpoint.mode == mode
    )
    if enabled_only:
        query = query.where(col(WebhookEndpoint.enabled).is_(True))
    query = query.order_by(col(WebhookEndpoint.created_at), col(WebhookEndpoint.id))
    async with store.session() as session:
        return list((await session.exec(query)).all())


async def get_endpoint(
    store: Store, *, endpoint_id: str, application_id: str, mode: str
) -> WebhookEndpoint | None:
    query = _endpoint_query(endpoint_id, application_id, mode)
    async with store.session() as session:
        return (await session.exec(query)).first()


async def update_endpoint(
    store: Store,
    *,
    endpoint_id: str,
    application_id: str,
    mode: str,
    url: str | None = None,
    description: str | None = None,
    event_types: Sequence[str] | None = None,
    enabled: bool | None = None,
    disabled_reason: str | None = None,
    secret_sealed: str | None = None,
) -> WebhookEndpoint | None:
    """Change the given fields (None: unchanged). Enabling clears the disabled reason."""
    async with store.session() as session:
        row = (await session.exec(_endpoint_query(endpoint_id, application_id, mode))).first()
        if row is None:
            return None
        if url is not None:
            row.url = url
        if description is not None:
            row.description = description
        if event_types is not None:
            row.event_types = list(dict.fromkeys(event_types))
        if secret_sealed is not None:
            row.secret_sealed = secret_sealed
        if enabled is not None and enabled != row.enabled:
            row.enabled = enabled
            row.disabled_reason = None if enabled else (disabled_reason or "disabled")
        row.updated_at = utcnow()
        session.add(row)
        await session.commit()
        return row


async def disable_endpoint(
    store: Store, *, endpoint_id: str, application_id: str, mode: str, reason: str
) -> bool:
    """Disable an endpoint (for example after 410 Gone); False if it does not exist."""
    row = await update_endpoint(
        store,
        endpoint_id=endpoint_id,
        application_id=application_id,
        mode=mode,
        enabled=False,
        disabled_reason=reason[:300],
    )
    return row is not None


async def delete_endpoint(
    store: Store, *, endpoint_id: str, application_id: str, mode: str
) -> bool:
    """Delete an endpoint; its messages and attempts stay as history. False if absent.

    Deliveries still pending for it stop at their next attempt.
    """
    async with store.session() as session:
        row = (await session.exec(_endpoint_query(endpoint_id, application_id, mode))).first()
        if row is None:
            return False
        await session.delete(row)
        await session.commit()
        return True


async def list_subscribed_endpoints(
    store: Store, *, application_id: str, mode: str, event_type: str
) -> list[WebhookEndpoint]:
    """Enabled endpoints of (application, mode) that want `event_type`."""
    endpoints = await list_endpoints(
        store, application_id=application_id, mode=mode, enabled_only=True
    )
    return [endpoint for endpoint in endpoints if _subscribed(endpoint, event_type)]


# ------------------------------------------------------------------- messages
async def insert_message(
    store: Store,
    *,
    message_id: str,
    endpoint_id: str,
    application_id: str,
    mode: str,
    event_type: str,
    verification_id: str | None = None,
) -> tuple[WebhookMessage, bool]:
    """The message row of (message, endpoint) and whether this call created it."""
    row = WebhookMessage(
        message_id=message_id,
        endpoint_id=endpoint_id,
        application_id=application_id,
        mode=mode,
        event_type=event_type,
        verification_id=verification_id,
    )
    async with store.session() as session:
        session.add(row)
        try:
            await session.commit()
            return row, True
        except IntegrityError:
            await session.rollback()
    existing = await _message(store, message_id=message_id, endpoint_id=endpoint_id)
    if existing is None:  # pragma: no cover - the conflict was on another constraint
        raise RuntimeError("webhook message conflict without an existing row")
    return existing, False


def _message_query(*, message_id: str, endpoint_id: str) -> SelectOfScalar[WebhookMessage]:
    return select(WebhookMessage).where(
        WebhookMessage.message_id == message_id, WebhookMessage.endpoint_id == endpoint_id
    )


async def _message(store: Store, *, message_id: str, endpoint_id: str) -> WebhookMessage | None:
    async with store.session() as session:
        query = _message_query(message_id=message_id, endpoint_id=endpoint_id)
        return (await session.exec(query)).first()


async def get_message(
    store: Store, *, message_id: str, endpoint_id: str, application_id: str, mode: str
) -> WebhookMessage | None:
    found = await _message(store, message_id=message_id, endpoint_id=endpoint_id)
    if found is None or found.application_id != application_id or found.mode != mode:
        return None
    return found


async def update_message(
    store: Store,
    *,
    message_id: str,
    endpoint_id: str,
    status: str | None = None,
    attempts: int | None = None,
    last_status_code: int | None = None,
    next_attempt_at: datetime | None = None,
) -> WebhookMessage | None:
    """Record progress; `attempts` only ever grows, `next_attempt_at` is cleared when final."""
    async with store.session() as session:
        query = _message_query(message_id=message_id, endpoint_id=endpoint_id)
        row = (await session.exec(query)).first()
        if row is None:
            return None
        if status is not None:
            row.status = status
        if attempts is not None and attempts >= row.attempts:
            row.attempts = attempts
            if last_status_code is not None:
                row.last_status_code = last_status_code
        row.next_attempt_at = next_attempt_at if row.status == PENDING else None
        row.updated_at = utcnow()
        session.add(row)
        await session.commit()
        return row


async def list_messages(
    store: Store,
    *,
    application_id: str,
    mode: str,
    endpoint_id: str | None = None,
    verification_id: str | None = None,
    limit: int = 50,
) -> list[WebhookMessage]:
    """Newest first."""
    query = select(WebhookMessage).where(
        WebhookMessage.application_id == application_id, WebhookMessage.mode == mode
    )
    if endpoint_id is not None:
        query = query.where(WebhookMessage.endpoint_id == endpoint_id)
    if verification_id is not None:
        query = query.where(WebhookMessage.verification_id == verification_id)
    query = query.order_by(col(WebhookMessage.id).desc()).limit(limit)
    async with store.session() as session:
        return list((await session.exec(query)).all())


# ------------------------------------------------------------------- attempts
async def record_attempt(
    store: Store,
    *,
    message_id: str,
    endpoint_id: str,
    attempt: int,
    status_code: int | None,
    error: str | None,
    duration_ms: int,
    attempted_at: datetime | None = None,
) -> tuple[WebhookAttempt, bool]:
    """The row of attempt n of (message, endpoint), and whether this call created it."""
    row = WebhookAttempt(
        message_id=message_id,
        endpoint_id=endpoint_id,
        attempt=attempt,
        status_code=status_code,
        error=error[:300] if error else None,
        duration_ms=duration_ms,
        attempted_at=attempted_at or utcnow(),
    )
    async with store.session() as session:
        session.add(row)
        try:
            await session.commit()
            return row, True
        except IntegrityError:
            await session.rollback()
    query = select(WebhookAttempt).where(
        WebhookAttempt.message_id == message_id,
        WebhookAttempt.endpoint_id == endpoint_id,
        WebhookAttempt.attempt == attempt,
    )
    async with store.session() as session:
        existing = (await session.exec(query)).first()
    if existing is None:  # pragma: no cover - the conflict was on another constraint
        raise RuntimeError("webhook attempt conflict without an existing row")
    return existing, False


async def list_attempts(store: Store, *, message_id: str, endpoint_id: str) -> list[WebhookAttempt]:
    """In attempt order."""
    query = (
        select(WebhookAttempt)
        .where(WebhookAttempt.message_id == message_id, WebhookAttempt.endpoint_id == endpoint_id)
        .order_by(col(WebhookAttempt.attempt))
    )
    async with store.session() as session:
        return list((await session.exec(query)).all())


# ------------------------------------------------------------------ secret rotation
async def rotate_endpoint_secret(
    store: Store,
    *,
    endpoint_id: str,
    application_id: str,
    mode: str,
    secret_sealed: str,
    previous_expires_at: datetime,
) -> WebhookEndpoint | None:
    """Make `secret_sealed` current; the secret it replaces keeps signing until
    `previous_expires_at` (an older previous secret is dropped). None if absent."""
    async with store.session() as session:
        row = (await session.exec(_endpoint_query(endpoint_id, application_id, mode))).first()
        if row is None:
            return None
        now = utcnow()
        if previous_expires_at > now:
            row.previous_secret_sealed = row.secret_sealed
            row.previous_secret_expires_at = previous_expires_at
        else:  # no grace period: the old secret stops signing at once
            row.previous_secret_sealed = None
            row.previous_secret_expires_at = None
        row.secret_sealed = secret_sealed
        row.updated_at = now
        session.add(row)
        await session.commit()
        return row


async def purge_expired_webhook_secrets(store: Store, *, now: datetime | None = None) -> int:
    """Drop every previous secret whose grace period has ended; the number of endpoints."""
    moment = now or utcnow()
    async with store.session() as session:
        rows = (
            await session.exec(
                select(WebhookEndpoint).where(
                    col(WebhookEndpoint.previous_secret_expires_at).is_not(None),
                    col(WebhookEndpoint.previous_secret_expires_at) <= moment,
                )
            )
        ).all()
        for row in rows:
            row.previous_secret_sealed = None
            row.previous_secret_expires_at = None
            session.add(row)
        await session.commit()
        return len(rows)
