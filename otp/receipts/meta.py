"""Meta WhatsApp Cloud API webhooks: the `X-Hub-Signature-256` check and message statuses.

Meta signs with `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`, keyed with
the app secret. Comparisons are constant time; a missing or empty signature never verifies.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from otp.domain import DeliveryStatus
from otp.receipts.receipt import DeliveryReceipt

META_SIGNATURE_HEADER = "X-Hub-Signature-256"


def meta_signature(app_secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value for a raw webhook body."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def verify_meta_signature(app_secret: str, body: bytes, signature: str) -> bool:
    """Whether `signature` (the whole header value, `sha256=...`) is Meta's for `body`."""
    if not signature or not app_secret:
        return False
    scheme, _, value = signature.strip().partition("=")
    if scheme.lower() != "sha256" or not value:
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), value.lower().encode())


def meta_subscription_challenge(query: Mapping[str, str], verify_token: str) -> str | None:
    """The `hub.challenge` to echo when Meta verifies the webhook subscription, else None."""
    if not verify_token or query.get("hub.mode") != "subscribe":
        return None
    token = query.get("hub.verify_token", "")
    if not hmac.compare_digest(token.encode(), verify_token.encode()):
        return None
    return query.get("hub.challenge")


_META_STATUSES: Mapping[str, DeliveryStatus] = {
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.DELIVERED,
    "failed": DeliveryStatus.FAILED,
}


def parse_meta_statuses(payload: Any) -> list[DeliveryReceipt]:
    """Every outbound message status in a Meta `messages` webhook (inbound messages ignored)."""
    return [receipt for receipt, _ in _meta_status_items(payload)]


def meta_status_references(payload: Any) -> dict[str, str]:
    """provider message id -> `biz_opaque_callback_data` (the adapter's idempotency key)."""
    return {receipt.provider_message_id: ref for receipt, ref in _meta_status_items(payload) if ref}


def _meta_status_items(payload: Any) -> list[tuple[DeliveryReceipt, str | None]]:
    items: list[tuple[DeliveryReceipt, str | None]] = []
    for change in _dicts(_dicts_get(payload, "entry"), "changes"):
        value = change.get("value")
        if not isinstance(value, dict):
            continue
        for entry in _list(value.get("statuses")):
            if not isinstance(entry, dict):
                continue
            message_id, raw = entry.get("id"), entry.get("status")
            if not isinstance(message_id, str) or not isinstance(raw, str):
                continue
            status = _META_STATUSES.get(raw.lower())
            if status is None:
                continue
            error_code = None
            if status is DeliveryStatus.FAILED:
                errors = _list(entry.get("errors"))
                first = errors[0] if errors and isinstance(errors[0], dict) else {}
                if first.get("code") is not None:
                    error_code = str(first["code"])
            ref = entry.get("biz_opaque_callback_data")
            items.append(
                (
                    DeliveryReceipt(message_id, status, error_code),
                    ref if isinstance(ref, str) else None,
                )
            )
    return items


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dicts_get(payload: Any, key: str) -> list[dict[str, Any]]:
    if not isinstance(payload, dict):
        return []
    return [item for item in _list(payload.get(key)) if isinstance(item, dict)]


def _dicts(parents: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return [child for parent in parents for child in _dicts_get(parent, key)]
