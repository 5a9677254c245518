"""Standard Webhooks (https://www.standardwebhooks.com): secrets, signatures, event bodies.

Every request to an application's endpoint carries
- `webhook-id`: the message id, the same on every attempt (deduplicate on it);
- `webhook-timestamp`: unix seconds of this attempt;
- `webhook-signature`: `v1,<base64 HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>`, one
  or more space-separated signatures (several while a secret is being rotated).

The secret is `whsec_` + base64 of random bytes; the HMAC key is the decoded bytes.
`verify` is what a receiver runs; it depends on nothing but the standard library and can
be copied into an integration as is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets as _random
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic_core import to_jsonable_python

from otp.domain import WebhookEvent

SECRET_PREFIX = "whsec_"  # noqa: S105 - a format prefix, not a secret
SECRET_BYTES = 32
DEFAULT_TOLERANCE = timedelta(minutes=5)
HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"
_VERSION = "v1"


class WebhookVerificationError(Exception):
    """The request is not a valid signed webhook (missing header, stale, bad signature)."""


def generate_secret(nbytes: int = SECRET_BYTES) -> str:
    """A fresh endpoint secret: `whsec_` + base64 of `nbytes` random bytes (24 to 64)."""
    if not 24 <= nbytes <= 64:
        raise ValueError("a webhook secret has 24 to 64 random bytes")
    return SECRET_PREFIX + base64.b64encode(_random.token_bytes(nbytes)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_...` secret (the prefix is optional)."""
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is whsec_ followed by base64") from None


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode() if isinstance(body, str) else body


def sign(secret: str, msg_id: str, timestamp: int | datetime, body: bytes | str) -> str:
    """The `webhook-signature` value (`v1,<base64>`) of one attempt."""
    seconds = int(timestamp.timestamp()) if isinstance(timestamp, datetime) else int(timestamp)
    to_sign = f"{msg_id}.{seconds}.".encode() + _as_bytes(body)
    digest = hmac.new(secret_key(secret), to_sign, hashlib.sha256).digest()
    return f"{_VERSION},{base64.b64encode(digest).decode()}"


def signed_headers(
    secret: str,
    msg_id: str,
    timestamp: int,
    body: bytes | str,
    *,
    previous_secrets: Sequence[str] = (),
) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt.

    During a secret rotation the signature header carries the current secret's signature
    first, then one per `previous_secrets`, space-separated: a receiver holding either
    secret verifies.
    """
    signatures = [sign(s, msg_id, timestamp, body) for s in (secret, *previous_secrets)]
    return {
        HEADER_ID: msg_id,
        HEADER_TIMESTAMP: str(int(timestamp)),
        HEADER_SIGNATURE: " ".join(signatures),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance: timedelta = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> None:
    """Raise WebhookVerificationError unless the request is signed with `secret` and fresh."""
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get(HEADER_ID, "")
    raw_ts = lowered.get(HEADER_TIMESTAMP, "")
    signatures = lowered.get(HEADER_SIGNATURE, "")
    if not msg_id or not raw_ts or not signatures:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or signature")
    try:
        timestamp = int(raw_ts)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not unix seconds") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance.total_seconds():
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance")
    expected = sign(secret, msg_id, timestamp, body).partition(",")[2].encode()
    matched = False
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == _VERSION:
            matched |= hmac.compare_digest(expected, value.encode())
    if not matched:
        raise WebhookVerificationError("no matching signature")


# ----------------------------------------------------------------- event bodies
_RESERVED = ("id", "application_id", "mode")


def iso8601(moment: datetime) -> str:
    """UTC with a `Z` suffix (a naive datetime is taken as UTC)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event_payload(event: WebhookEvent) -> dict[str, Any]:
    """`{"type", "timestamp", "data": {"id", "application_id", "mode", ...event data}}`."""
    data: dict[str, Any] = {
        "id": event.verification_id,
        "application_id": event.application_id,
        "mode": str(event.mode),
    }
    data.update({k: v for k, v in event.data.items() if k not in _RESERVED})
    return {
        "type": str(event.type),
        "timestamp": iso8601(event.occurred_at),
        "data": to_jsonable_python(data),
    }


def event_body(event: WebhookEvent) -> str:
    """The canonical JSON text of an event: compact, the same for the same event."""
    return json.dumps(event_payload(event), separators=(",", ":"), ensure_ascii=False)
