"""Verify provider webhooks and read delivery receipts out of them.

- Twilio signs each request with `X-Twilio-Signature`: base64 HMAC-SHA1, keyed with the auth
  token, of the full request URL (as Twilio called it, query included) followed by every
  POST parameter sorted by name, name and value concatenated with no separator. JSON
  webhooks instead carry `bodySHA256=<hex sha256 of the raw body>` in the URL, and the
  signature covers the URL alone. As Twilio's SDKs do, the URL is also tried with the
  default port added and removed, since proxies disagree about it.
- Meta signs with `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`, keyed with
  the app secret.

Every comparison is constant time; a missing or empty signature never verifies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from otp.domain import DeliveryStatus

TWILIO_SIGNATURE_HEADER = "X-Twilio-Signature"
META_SIGNATURE_HEADER = "X-Hub-Signature-256"

Params = Mapping[str, str] | Iterable[tuple[str, str]]


class DeliveryReceipt(NamedTuple):
    """One delivery status change, as (provider_message_id, status, error_code)."""

    provider_message_id: str
    status: DeliveryStatus
    error_code: str | None


# --- Twilio ------------------------------------------------------------------------------


def twilio_signature(auth_token: str, url: str, params: Params = ()) -> str:
    """The `X-Twilio-Signature` value for a request to `url` with form `params`."""
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    payload = url + "".join(name + value for name, value in sorted(pairs))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify_twilio_signature(auth_token: str, url: str, params: Params, signature: str) -> bool:
    """Whether `signature` is Twilio's for this form-encoded request."""
    if not signature or not auth_token:
        return False
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    matched = False
    for candidate in _url_variants(url):
        expected = twilio_signature(auth_token, candidate, pairs)
        # No early exit: every variant costs the same.
        matched |= hmac.compare_digest(expected.encode(), signature.encode())
    return matched


def verify_twilio_json_signature(auth_token: str, url: str, body: bytes, signature: str) -> bool:
    """Whether `signature` is Twilio's for a JSON request: URL signature + `bodySHA256` match."""
    if not signature or not auth_token:
        return False
    query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    claimed = query.get("bodySHA256", "")
    actual = hashlib.sha256(body).hexdigest()
    body_ok = hmac.compare_digest(claimed.lower().encode(), actual.encode())
    return verify_twilio_signature(auth_token, url, (), signature) and body_ok


def _url_variants(url: str) -> list[str]:
    parts = urlsplit(url)
    default_port = {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname or ""
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    variants = [url]
    if default_port is None or not host:
        return variants
    if parts.port is None:
        variants.append(urlunsplit(parts._replace(netloc=f"{prefix}{host}:{default_port}")))
    elif parts.port == default_port:
        variants.append(urlunsplit(parts._replace(netloc=f"{prefix}{host}")))
    return variants


_TWILIO_STATUSES: Mapping[str, DeliveryStatus] = {
    # messages
    "accepted": DeliveryStatus.SENT,
    "scheduled": DeliveryStatus.SENT,
    "queued": DeliveryStatus.SENT,
    "sending": DeliveryStatus.SENT,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.FAILED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
    # calls
    "initiated": DeliveryStatus.SENT,
    "ringing": DeliveryStatus.SENT,
    "in-progress": DeliveryStatus.SENT,
    "answered": DeliveryStatus.SENT,
    "completed": DeliveryStatus.DELIVERED,
    "busy": DeliveryStatus.FAILED,
    "no-answer": DeliveryStatus.FAILED,
}


def parse_twilio_status(form: Mapping[str, str]) -> DeliveryReceipt | None:
    """The receipt in a Twilio message or call status callback, or None if it holds none."""
    if form.get("CallSid") and form.get("CallStatus"):
        sid, raw = form["CallSid"], form["CallStatus"]
    else:
        sid = form.get("MessageSid") or form.get("SmsSid") or ""
        raw = form.get("MessageStatus") or form.get("SmsStatus") or ""
    status = _TWILIO_STATUSES.get(raw.strip().lower())
    if not sid or status is None:
        return None
    error = (form.get("ErrorCode") or "").strip() or None
    return DeliveryReceipt(sid, status, error if status is DeliveryStatus.FAILED else None)


def twilio_reference(url: str) -> str | None:
    """The `ref` (idempotency key) the Twilio adapter put in the status callback URL."""
    for name, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        if name == "ref" and value:
            return value
    return None


# --- Meta --------------------------------------------------------------------------------


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
