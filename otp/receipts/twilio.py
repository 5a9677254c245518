"""Twilio status callbacks: the `X-Twilio-Signature` check and the message status they carry.

Twilio signs each request with `X-Twilio-Signature`: base64 HMAC-SHA1, keyed with the auth
token, of the full request URL (as Twilio called it, query included) followed by every POST
parameter sorted by name, name and value concatenated with no separator. JSON webhooks
instead carry `bodySHA256=<hex sha256 of the raw body>` in the URL, and the signature covers
the URL alone. As Twilio's SDKs do, the URL is also tried with the default port added and
removed, since proxies disagree about it. Comparisons are constant time; a missing or empty
signature never verifies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from otp.cost.money import check_currency, parse_provider_price
from otp.domain import DeliveryStatus
from otp.receipts.receipt import DeliveryReceipt, Params

TWILIO_SIGNATURE_HEADER = "X-Twilio-Signature"


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
    price, unit = twilio_price(form.get("Price"), form.get("PriceUnit"))
    return DeliveryReceipt(
        sid, status, error if status is DeliveryStatus.FAILED else None, price, unit
    )


def twilio_price(price: str | None, unit: str | None) -> tuple[int | None, str | None]:
    """Twilio's `price` and `price_unit` (a message's charge, written negative: `-0.00790`,
    `USD`) as positive micros and a currency; (None, None) while Twilio has not priced it."""
    if not price or not unit:
        return None, None
    micros = parse_provider_price(price)
    try:
        currency = check_currency(unit)
    except ValueError:
        return None, None
    return (micros, currency) if micros is not None else (None, None)


def twilio_reference(url: str) -> str | None:
    """The `ref` (idempotency key) the Twilio adapter put in the status callback URL."""
    for name, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        if name == "ref" and value:
            return value
    return None
