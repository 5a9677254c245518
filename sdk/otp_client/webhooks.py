"""Receive the service's webhooks: Standard Webhooks signature check and typed events.

    from otp_client import webhooks

    event = webhooks.verify(secret, request.headers, raw_body)  # raises if not authentic
    if event.type == "verification.approved":
        ...

`webhook-signature` holds space-separated `v1,<base64 HMAC-SHA256>` signatures of
`"{webhook-id}.{webhook-timestamp}.{body}"`, keyed with the base64-decoded part of the
endpoint's `whsec_...` secret. Deduplicate on `event.message_id`: it is the same on
every retry of a delivery.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping
from datetime import datetime

from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = [
    "WebhookEvent",
    "WebhookEventData",
    "WebhookEventDetail",
    "WebhookVerificationError",
    "parse_event",
    "sign",
    "verify",
]

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
DEFAULT_TOLERANCE_S = 300


class WebhookVerificationError(Exception):
    """The request is not an authentic, fresh webhook of this endpoint."""


class WebhookEventDetail(BaseModel):
    """The state change behind a verification event."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: str
    occurred_at: datetime | None = None
    channel: str | None = None
    provider: str | None = None
    reason: str | None = None


class WebhookEventData(BaseModel):
    """The event's `data`: the verification as webhooks show it (no code, masked `to`).

    Fields of other event types (`endpoint_id`, `message` of `webhook.test`) are kept as
    extra attributes (`model_extra`).
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str | None = None  # the verification id (None for `webhook.test`)
    application_id: str
    mode: str
    status: str | None = None
    reason: str | None = None
    channel: str | None = None
    channels: list[str] = []
    country: str | None = None
    to: str | None = None
    client_ref: str | None = None
    created_at: datetime | None = None
    expires_at: datetime | None = None
    finished_at: datetime | None = None
    attempts_used: int | None = None
    sends: int | None = None
    event: WebhookEventDetail | None = None


class WebhookEvent(BaseModel):
    """`{"type", "timestamp", "data"}` plus the delivery's `webhook-id` as `message_id`."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: str
    timestamp: datetime
    data: WebhookEventData
    message_id: str | None = None


def _key(secret: str) -> bytes:
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise WebhookVerificationError("the secret is not whsec_<base64>") from None


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode() if isinstance(body, str) else body


def sign(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """`v1,<signature>` of a message, as a sender computes it (for tests and tools)."""
    signed = f"{msg_id}.{int(timestamp)}.".encode() + _as_bytes(body)
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    raise WebhookVerificationError(f"missing {name} header")


def check_signature(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> str:
    """Raise `WebhookVerificationError` unless the request is authentic; its webhook-id."""
    msg_id = _header(headers, "webhook-id")
    raw_ts = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    try:
        timestamp = int(raw_ts)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not unix seconds") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance")
    expected = sign(secret, msg_id, timestamp, body).partition(",")[2].encode()
    for item in signatures.split():
        version, _, signature = item.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode(), expected):
            return msg_id
    raise WebhookVerificationError("no matching signature")


def parse_event(body: bytes | str, *, message_id: str | None = None) -> WebhookEvent:
    """The typed event of a body (no signature check: use `verify` on received requests)."""
    try:
        event = WebhookEvent.model_validate_json(body)
    except ValidationError as exc:
        raise WebhookVerificationError(f"the body is not a webhook event: {exc}") from None
    if message_id is not None:
        event = event.model_copy(update={"message_id": message_id})
    return event


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    tolerance: float = DEFAULT_TOLERANCE_S,
    *,
    now: float | None = None,
) -> WebhookEvent:
    """Check the signature and freshness of a received webhook, then parse it.

    `headers`: the request's headers (any case); `body`: the raw bytes as received (not
    re-serialised JSON); `tolerance`: seconds the timestamp may differ from now.
    """
    msg_id = check_signature(secret, headers, body, tolerance=tolerance, now=now)
    return parse_event(body, message_id=msg_id)
