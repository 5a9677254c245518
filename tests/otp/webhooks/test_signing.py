"""Standard Webhooks signatures, checked against the spec's vector and an independent verifier."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from otp.domain import Mode, WebhookEvent, WebhookEventType
from otp.webhooks.models import (
    RETRY_AFTER_MAX_S,
    RETRY_SCHEDULE_S,
    UnsafeWebhookUrl,
    check_url_syntax,
    is_public_address,
    jittered,
    next_delay,
    resolve_public,
)
from otp.webhooks.signing import (
    WebhookVerificationError,
    event_body,
    generate_secret,
    sign,
    signed_headers,
    verify,
)
from tests.helpers.webhook_receiver import spec_verify

# Published by the Standard Webhooks reference libraries.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = '{"test": 2432232314}'
VECTOR_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def independent_sign(secret: str, msg_id: str, ts: int, body: bytes) -> str:
    key = base64.b64decode(secret[len("whsec_") :])
    signed = b"%s.%d.%s" % (msg_id.encode(), ts, body)
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def test_published_vector() -> None:
    assert sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY) == VECTOR_SIG
    headers = {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TS),
        "webhook-signature": VECTOR_SIG,
    }
    verify(VECTOR_SECRET, headers, VECTOR_BODY.encode(), now=VECTOR_TS + 10)


def test_signature_matches_an_independent_implementation() -> None:
    secret = generate_secret()
    body = '{"type":"verification.approved","data":{"id":"ver_1"}}'
    ts = int(time.time())
    headers = signed_headers(secret, "msg_abc", ts, body)
    assert headers["webhook-signature"] == independent_sign(secret, "msg_abc", ts, body.encode())
    assert spec_verify(secret, headers, body.encode())


def test_generated_secret_shape() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[6:])) == 32
    assert generate_secret() != secret
    with pytest.raises(ValueError):
        generate_secret(16)


def test_verify_accepts_any_of_several_signatures_and_header_case() -> None:
    secret, other = generate_secret(), generate_secret()
    ts = int(time.time())
    good = sign(secret, "msg_1", ts, b"{}")
    headers = {
        "Webhook-Id": "msg_1",
        "Webhook-Timestamp": str(ts),
        "Webhook-Signature": f"{sign(other, 'msg_1', ts, b'{}')} v1a,xyz {good}",
    }
    verify(secret, headers, b"{}")


@pytest.mark.parametrize(
    "change",
    ["body", "id", "timestamp_stale", "timestamp_future", "secret", "missing", "version"],
)
def test_verify_rejects(change: str) -> None:
    secret = generate_secret()
    ts = int(time.time())
    body = b'{"a":1}'
    headers = signed_headers(secret, "msg_1", ts, body)
    if change == "body":
        body = b'{"a":2}'
    elif change == "id":
        headers["webhook-id"] = "msg_2"
    elif change == "timestamp_stale":
        headers = signed_headers(secret, "msg_1", ts - 301, body)
    elif change == "timestamp_future":
        headers = signed_headers(secret, "msg_1", ts + 301, body)
    elif change == "secret":
        secret = generate_secret()
    elif change == "missing":
        del headers["webhook-signature"]
    elif change == "version":
        headers["webhook-signature"] = headers["webhook-signature"].replace("v1,", "v2,")
    with pytest.raises(WebhookVerificationError):
        verify(secret, headers, body)


def test_tolerance_is_configurable() -> None:
    secret = generate_secret()
    ts = int(time.time()) - 600
    headers = signed_headers(secret, "msg_1", ts, b"x")
    verify(secret, headers, b"x", tolerance=timedelta(minutes=11))


def test_event_body_is_canonical_and_stable() -> None:
    event = WebhookEvent(
        id="msg_x",
        type=WebhookEventType.APPROVED,
        application_id="app_1",
        mode=Mode.LIVE,
        occurred_at=datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC),
        verification_id="ver_1",
        data={"channel": "sms", "id": "ignored", "mode": "ignored", "to": "+1415*****23"},
    )
    body = event_body(event)
    assert body == event_body(event.model_copy())
    assert json.loads(body) == {
        "type": "verification.approved",
        "timestamp": "2026-01-02T03:04:05.600000Z",
        "data": {
            "id": "ver_1",
            "application_id": "app_1",
            "mode": "live",
            "channel": "sms",
            "to": "+1415*****23",
        },
    }
    assert " " not in body


def test_schedule_lasts_about_three_days_and_jitter_is_bounded() -> None:
    total = sum(RETRY_SCHEDULE_S)
    assert 2.5 * 86400 < total <= 3 * 86400
    assert RETRY_SCHEDULE_S[:2] == (5, 300)
    assert jittered(100, 0.0) == pytest.approx(90)
    assert jittered(100, 0.999999) == pytest.approx(110, abs=0.01)


def test_retry_after_postpones_within_bounds() -> None:
    assert next_delay(300, None) == 300
    assert next_delay(300, 10) == 300  # never earlier than planned
    assert next_delay(5, 600) == 600
    assert next_delay(5, 10 * 86400) == RETRY_AFTER_MAX_S


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",  # not https
        "https://127.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.5/",
        "https://[::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://100.64.0.1/",
        "https://localhost:8443/",
        "https://user:pw@example.com/",
        "ftp://example.com/",
        "https:///nohost",
    ],
)
def test_live_urls_refused(url: str) -> None:
    with pytest.raises(UnsafeWebhookUrl):
        check_url_syntax(url, Mode.LIVE)


def test_test_mode_allows_http_and_localhost() -> None:
    assert check_url_syntax("http://127.0.0.1:8080/x", Mode.TEST) == ("127.0.0.1", 8080)
    assert check_url_syntax("http://localhost/x", Mode.TEST) == ("localhost", 80)
    assert check_url_syntax("https://example.com/x", Mode.LIVE) == ("example.com", 443)


def test_public_addresses() -> None:
    assert is_public_address(ipaddress.ip_address("93.184.216.34"))
    assert is_public_address(ipaddress.ip_address("2606:2800:220:1:248:1893:25c8:1946"))
    for private in ("192.168.1.1", "172.16.0.1", "0.0.0.0", "224.0.0.1", "fd00:ec2::254"):
        assert not is_public_address(ipaddress.ip_address(private))


async def test_resolution_refuses_names_resolving_to_loopback() -> None:
    with pytest.raises(UnsafeWebhookUrl):
        await resolve_public("localhost", 443)
    with pytest.raises(UnsafeWebhookUrl):
        await resolve_public("127.0.0.1", 443)
