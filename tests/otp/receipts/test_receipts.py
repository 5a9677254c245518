"""Webhook signature verification (published vectors) and receipt parsing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from otp.domain import DeliveryStatus
from otp.receipts.meta import (
    meta_signature,
    meta_status_references,
    meta_subscription_challenge,
    parse_meta_statuses,
    verify_meta_signature,
)
from otp.receipts.receipt import DeliveryReceipt
from otp.receipts.twilio import (
    parse_twilio_status,
    twilio_reference,
    twilio_signature,
    verify_twilio_json_signature,
    verify_twilio_signature,
)
from providers.twilio import with_reference

# Twilio's published example (security docs / twilio-samples api-snippets
# security/signature_validation): auth token 12345 and this URL and form.
TWILIO_TOKEN = "12345"
TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TWILIO_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
TWILIO_EXPECTED = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
# The older revision of the same example, with Caller/From +12349013030.
TWILIO_PARAMS_OLD = {**TWILIO_PARAMS, "Caller": "+12349013030", "From": "+12349013030"}
TWILIO_EXPECTED_OLD = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


@pytest.mark.parametrize(
    ("params", "expected"),
    [(TWILIO_PARAMS, TWILIO_EXPECTED), (TWILIO_PARAMS_OLD, TWILIO_EXPECTED_OLD)],
)
def test_twilio_published_vector(params: dict[str, str], expected: str) -> None:
    assert twilio_signature(TWILIO_TOKEN, TWILIO_URL, params) == expected
    assert verify_twilio_signature(TWILIO_TOKEN, TWILIO_URL, params, expected)
    # Order of the form fields does not matter; they are sorted by name.
    assert verify_twilio_signature(
        TWILIO_TOKEN, TWILIO_URL, list(reversed(params.items())), expected
    )


def test_twilio_rejects_tampering_and_missing_signatures() -> None:
    assert not verify_twilio_signature(
        TWILIO_TOKEN, TWILIO_URL, {**TWILIO_PARAMS, "Digits": "1235"}, TWILIO_EXPECTED
    )
    assert not verify_twilio_signature(
        TWILIO_TOKEN, TWILIO_URL.replace("bar=2", "bar=3"), TWILIO_PARAMS, TWILIO_EXPECTED
    )
    assert not verify_twilio_signature("54321", TWILIO_URL, TWILIO_PARAMS, TWILIO_EXPECTED)
    assert not verify_twilio_signature(TWILIO_TOKEN, TWILIO_URL, TWILIO_PARAMS, "")
    assert not verify_twilio_signature("", TWILIO_URL, TWILIO_PARAMS, TWILIO_EXPECTED)


def test_twilio_accepts_the_url_with_or_without_the_default_port() -> None:
    with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
    signed_with_port = twilio_signature(TWILIO_TOKEN, with_port, TWILIO_PARAMS)
    assert verify_twilio_signature(TWILIO_TOKEN, TWILIO_URL, TWILIO_PARAMS, signed_with_port)
    assert verify_twilio_signature(TWILIO_TOKEN, with_port, TWILIO_PARAMS, TWILIO_EXPECTED)
    other_port = "https://mycompany.com:8443/myapp.php?foo=1&bar=2"
    assert not verify_twilio_signature(TWILIO_TOKEN, other_port, TWILIO_PARAMS, TWILIO_EXPECTED)


def test_twilio_json_webhooks_check_the_body_hash() -> None:
    # Twilio's published JSON example: this body hashes to the bodySHA256 in its URL.
    body = b'{"CallSid":"CA1234567890ABCDE","Caller":"+12349013030"}'
    url = (
        "https://example.com/myapp?bodySHA256="
        "5ccde7145dfb8f56479710896586cb9d5911809d83afbe34627818790db0aec9"
    )
    # Independent computation: HMAC-SHA1 over the URL alone (no form parameters).
    signature = base64.b64encode(
        hmac.new(TWILIO_TOKEN.encode(), url.encode(), hashlib.sha1).digest()
    ).decode()
    assert verify_twilio_json_signature(TWILIO_TOKEN, url, body, signature)
    assert not verify_twilio_json_signature(TWILIO_TOKEN, url, body + b" ", signature)
    assert not verify_twilio_json_signature(TWILIO_TOKEN, url, body, TWILIO_EXPECTED)


def test_meta_signature_matches_an_independent_hmac() -> None:
    secret = "meta-app-secret-not-real"
    body = json.dumps({"object": "whatsapp_business_account", "entry": []}).encode()
    independent = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()

    assert meta_signature(secret, body) == independent
    assert verify_meta_signature(secret, body, independent)
    assert verify_meta_signature(secret, body, independent.upper().replace("SHA256=", "sha256="))
    assert not verify_meta_signature(secret, body + b"\n", independent)
    assert not verify_meta_signature("other-secret", body, independent)
    assert not verify_meta_signature(secret, body, independent.removeprefix("sha256="))
    assert not verify_meta_signature(secret, body, "sha1=" + independent[7:])
    assert not verify_meta_signature(secret, body, "")


def test_meta_subscription_challenge() -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": "vt-123", "hub.challenge": "1158201444"}
    assert meta_subscription_challenge(query, "vt-123") == "1158201444"
    assert meta_subscription_challenge(query, "vt-999") is None
    assert meta_subscription_challenge({**query, "hub.mode": "unsubscribe"}, "vt-123") is None
    assert meta_subscription_challenge(query, "") is None


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        (
            {"MessageSid": "SM1", "MessageStatus": "queued", "SmsSid": "SM1"},
            DeliveryReceipt("SM1", DeliveryStatus.SENT, None),
        ),
        ({"MessageSid": "SM1", "MessageStatus": "sent"}, ("SM1", DeliveryStatus.SENT, None)),
        (
            {"MessageSid": "SM1", "MessageStatus": "delivered"},
            ("SM1", DeliveryStatus.DELIVERED, None),
        ),
        ({"MessageSid": "SM1", "MessageStatus": "read"}, ("SM1", DeliveryStatus.DELIVERED, None)),
        (
            {"MessageSid": "SM1", "MessageStatus": "undelivered", "ErrorCode": "30003"},
            ("SM1", DeliveryStatus.FAILED, "30003"),
        ),
        (
            {"MessageSid": "SM1", "MessageStatus": "failed", "ErrorCode": "30008"},
            ("SM1", DeliveryStatus.FAILED, "30008"),
        ),
        ({"MessageSid": "SM1", "MessageStatus": "canceled"}, ("SM1", DeliveryStatus.FAILED, None)),
        ({"SmsSid": "SM2", "SmsStatus": "delivered"}, ("SM2", DeliveryStatus.DELIVERED, None)),
        ({"CallSid": "CA1", "CallStatus": "ringing"}, ("CA1", DeliveryStatus.SENT, None)),
        ({"CallSid": "CA1", "CallStatus": "completed"}, ("CA1", DeliveryStatus.DELIVERED, None)),
        ({"CallSid": "CA1", "CallStatus": "busy"}, ("CA1", DeliveryStatus.FAILED, None)),
        ({"CallSid": "CA1", "CallStatus": "no-answer"}, ("CA1", DeliveryStatus.FAILED, None)),
        ({"CallSid": "CA1", "CallStatus": "failed"}, ("CA1", DeliveryStatus.FAILED, None)),
        ({"CallSid": "CA1", "CallStatus": "canceled"}, ("CA1", DeliveryStatus.FAILED, None)),
        ({"MessageSid": "SM1", "MessageStatus": "receiving"}, None),
        ({"Body": "hello"}, None),
    ],
)
def test_parse_twilio_status(form: dict[str, str], expected: tuple[object, ...] | None) -> None:
    parsed = parse_twilio_status(form)
    assert (tuple(parsed)[:3] if parsed else None) == (tuple(expected)[:3] if expected else None)
    assert parsed is None or (parsed.price_micros, parsed.price_currency) == (None, None)


@pytest.mark.parametrize(
    ("price", "unit", "expected"),
    [
        ("-0.00790", "USD", (7_900, "USD")),
        ("-0.0150", "eur", (15_000, "EUR")),
        ("", "USD", (None, None)),  # not priced yet
        ("-0.0079", "", (None, None)),
        ("n/a", "USD", (None, None)),
        ("-0.0079", "DOLLARS", (None, None)),
    ],
)
def test_a_twilio_callback_price_is_read_as_positive_micros(
    price: str, unit: str, expected: tuple[int | None, str | None]
) -> None:
    form = {"MessageSid": "SM1", "MessageStatus": "delivered", "Price": price, "PriceUnit": unit}
    parsed = parse_twilio_status(form)
    assert parsed is not None and (parsed.price_micros, parsed.price_currency) == expected


def test_twilio_reference_round_trips_through_the_callback_url() -> None:
    url = with_reference("https://otp.example.com/v1/receipts/twilio?region=eu", "ver_ab:12")
    assert url == "https://otp.example.com/v1/receipts/twilio?region=eu&ref=ver_ab%3A12"
    assert twilio_reference(url) == "ver_ab:12"
    assert twilio_reference("https://otp.example.com/v1/receipts/twilio") is None


META_WEBHOOK = {
    "object": "whatsapp_business_account",
    "entry": [
        {
            "id": "102290129340398",
            "changes": [
                {
                    "field": "messages",
                    "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {
                            "display_phone_number": "15550783881",
                            "phone_number_id": "106540352242922",
                        },
                        "statuses": [
                            {
                                "id": "wamid.A",
                                "status": "sent",
                                "timestamp": "1750263773",
                                "recipient_id": "14155550123",
                                "biz_opaque_callback_data": "ver_a:1",
                                "pricing": {"billable": True, "category": "authentication"},
                            },
                            {
                                "id": "wamid.A",
                                "status": "delivered",
                                "timestamp": "1750263774",
                                "recipient_id": "14155550123",
                                "biz_opaque_callback_data": "ver_a:1",
                            },
                            {"id": "wamid.A", "status": "read", "timestamp": "1750263790"},
                            {
                                "id": "wamid.B",
                                "status": "failed",
                                "timestamp": "1750263800",
                                "recipient_id": "14155550199",
                                "errors": [
                                    {
                                        "code": 131026,
                                        "title": "Message undeliverable",
                                        "message": "Message undeliverable",
                                        "error_data": {"details": "Message Undeliverable."},
                                    }
                                ],
                            },
                            {"id": "wamid.C", "status": "deleted", "timestamp": "1750263801"},
                        ],
                    },
                },
                {
                    "field": "messages",
                    "value": {
                        "messaging_product": "whatsapp",
                        "contacts": [{"profile": {"name": "Sheena"}, "wa_id": "16505551234"}],
                        "messages": [{"from": "16505551234", "id": "wamid.IN", "type": "text"}],
                    },
                },
            ],
        }
    ],
}


def test_parse_meta_statuses() -> None:
    assert [tuple(r)[:3] for r in parse_meta_statuses(META_WEBHOOK)] == [
        ("wamid.A", DeliveryStatus.SENT, None),
        ("wamid.A", DeliveryStatus.DELIVERED, None),
        ("wamid.A", DeliveryStatus.DELIVERED, None),
        ("wamid.B", DeliveryStatus.FAILED, "131026"),
    ]
    assert meta_status_references(META_WEBHOOK) == {"wamid.A": "ver_a:1"}


@pytest.mark.parametrize("payload", [None, [], {}, {"entry": "x"}, {"entry": [{"changes": [1]}]}])
def test_parse_meta_statuses_tolerates_junk(payload: object) -> None:
    assert parse_meta_statuses(payload) == []
