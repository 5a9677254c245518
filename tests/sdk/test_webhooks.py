"""Webhook verification: against signatures computed here from the spec, and against real
deliveries of the service (endpoint CRUD, a test send and a verification event)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import time

import pytest
from otp_client import AsyncOtpClient, ConflictError, InvalidRequestError, NotFoundError, webhooks
from otp_client.webhooks import WebhookVerificationError

from tests.helpers.api import Keys
from tests.helpers.webhook_receiver import Receiver, Reply, serve
from tests.sdk.conftest import unique_email

KEY = os.urandom(24)
SECRET = "whsec_" + base64.b64encode(KEY).decode()
BODY = json.dumps(
    {
        "type": "verification.approved",
        "timestamp": "2026-01-02T03:04:05Z",
        "data": {
            "id": "ver_" + "c" * 26,
            "application_id": "default",
            "mode": "live",
            "status": "approved",
            "channels": ["sms"],
            "to": "+1415*****23",
            "client_ref": "order-7",
            "event": {"type": "approved", "occurred_at": "2026-01-02T03:04:05+00:00"},
            "added_later": 1,
        },
    },
    separators=(",", ":"),
).encode()


def spec_headers(body: bytes, *, msg_id: str = "msg_abc", ts: int | None = None) -> dict[str, str]:
    """Headers signed by hand from the Standard Webhooks spec, not by the SDK."""
    stamp = str(int(time.time()) if ts is None else ts)
    mac = hmac.new(KEY, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "Webhook-Id": msg_id,
        "Webhook-Timestamp": stamp,
        "Webhook-Signature": "v1," + base64.b64encode(mac).decode(),
    }


def test_verify_accepts_a_spec_signature_and_parses_the_event() -> None:
    event = webhooks.verify(SECRET, spec_headers(BODY), BODY)
    assert event.type == "verification.approved"
    assert event.message_id == "msg_abc"
    assert event.data.id == "ver_" + "c" * 26
    assert event.data.status == "approved" and event.data.client_ref == "order-7"
    assert event.data.event is not None and event.data.event.type == "approved"
    assert event.data.model_extra == {"added_later": 1}
    # Several signatures (key rotation): one valid v1 is enough; other versions are ignored.
    headers = spec_headers(BODY)
    headers["Webhook-Signature"] = f"v1a,xyz v1,{'A' * 44} {headers['Webhook-Signature']}"
    assert webhooks.verify(SECRET, headers, BODY.decode()).type == "verification.approved"
    assert (
        webhooks.sign(SECRET, "msg_abc", 1700000000, BODY)
        == (spec_headers(BODY, ts=1700000000)["Webhook-Signature"])
    )


@pytest.mark.parametrize(
    "case", ["tampered", "wrong-secret", "stale", "future", "missing", "bad-timestamp", "v2-only"]
)
def test_verify_refuses(case: str) -> None:
    headers, body, secret = spec_headers(BODY), BODY, SECRET
    if case == "tampered":
        body = BODY.replace(b"order-7", b"order-8")
    elif case == "wrong-secret":
        secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    elif case == "stale":
        headers = spec_headers(BODY, ts=int(time.time()) - 301)
    elif case == "future":
        headers = spec_headers(BODY, ts=int(time.time()) + 301)
    elif case == "missing":
        del headers["Webhook-Signature"]
    elif case == "bad-timestamp":
        headers["Webhook-Timestamp"] = "yesterday"
    elif case == "v2-only":
        headers["Webhook-Signature"] = headers["Webhook-Signature"].replace("v1,", "v2,")
    with pytest.raises(WebhookVerificationError):
        webhooks.verify(secret, headers, body)


def test_tolerance_is_configurable() -> None:
    old = int(time.time()) - 1000
    with pytest.raises(WebhookVerificationError):
        webhooks.verify(SECRET, spec_headers(BODY, ts=old), BODY)
    assert webhooks.verify(SECRET, spec_headers(BODY, ts=old), BODY, tolerance=1200)


async def test_real_deliveries_verify(service_url: str, keys: Keys) -> None:
    receiver = Receiver([Reply(200)])
    async with (
        serve(receiver),
        AsyncOtpClient(keys.test, base_url=service_url) as otp,
    ):
        endpoint = await otp.create_webhook_endpoint(
            receiver.url,
            description="sdk test",
            event_types=["verification.created", "verification.canceled"],
        )
        assert endpoint.secret.startswith("whsec_") and endpoint.enabled
        assert await otp.get_webhook_endpoint_secret(endpoint.id) == endpoint.secret
        assert [e.id for e in await otp.list_webhook_endpoints()] == [endpoint.id]

        sent = await otp.send_webhook_test(endpoint.id)
        (received,) = await receiver.wait_for(1)
        test_event = webhooks.verify(endpoint.secret, received.headers, received.body)
        assert test_event.type == "webhook.test"
        assert test_event.message_id == sent.message_id
        assert test_event.data.mode == "test" and test_event.data.id is None
        assert (test_event.data.model_extra or {})["endpoint_id"] == endpoint.id

        created = await otp.start_verification(unique_email(), client_ref="hooked")
        await receiver.wait_for(2)
        event = webhooks.verify(
            endpoint.secret, receiver.requests[1].headers, receiver.requests[1].body
        )
        assert event.type == "verification.created"
        assert event.data.id == created.id and event.data.client_ref == "hooked"
        with pytest.raises(WebhookVerificationError):
            webhooks.verify(endpoint.secret, received.headers, receiver.requests[1].body)

        messages = await otp.list_webhook_messages(endpoint.id)
        assert sent.message_id in {m.message_id for m in messages}
        for _ in range(100):  # the attempt is recorded once the sender has the answer
            attempts = await otp.list_webhook_attempts(endpoint.id, sent.message_id)
            if attempts:
                break
            await asyncio.sleep(0.05)
        assert [a.status_code for a in attempts] == [200]

        disabled = await otp.update_webhook_endpoint(endpoint.id, enabled=False)
        assert not disabled.enabled
        with pytest.raises(ConflictError):
            await otp.send_webhook_test(endpoint.id)
        await otp.delete_webhook_endpoint(endpoint.id)
        with pytest.raises(NotFoundError):
            await otp.get_webhook_endpoint(endpoint.id)


async def test_secret_rotation_signs_with_the_new_secret_and_the_old_one_for_its_grace(
    service_url: str, keys: Keys
) -> None:
    receiver = Receiver([Reply(200)])
    async with (
        serve(receiver),
        AsyncOtpClient(keys.test, base_url=service_url) as otp,
    ):
        endpoint = await otp.create_webhook_endpoint(receiver.url)
        first = await otp.rotate_webhook_endpoint_secret(endpoint.id, grace_period_s=0)
        assert first.secret.startswith("whsec_") and first.secret != endpoint.secret
        assert first.previous_secret_expires_at is None
        assert await otp.get_webhook_endpoint_secret(endpoint.id) == first.secret

        await otp.send_webhook_test(endpoint.id)
        (received,) = await receiver.wait_for(1)
        assert webhooks.verify(first.secret, received.headers, received.body).type == "webhook.test"
        with pytest.raises(WebhookVerificationError):
            webhooks.verify(endpoint.secret, received.headers, received.body)

        second = await otp.rotate_webhook_endpoint_secret(endpoint.id, grace_period_s=600)
        assert second.previous_secret_expires_at is not None
        await otp.send_webhook_test(endpoint.id)
        await receiver.wait_for(2)
        during_grace = receiver.requests[1]
        for secret in (second.secret, first.secret):  # both sign while the grace lasts
            webhooks.verify(secret, during_grace.headers, during_grace.body)
        with pytest.raises(InvalidRequestError):
            await otp.rotate_webhook_endpoint_secret(endpoint.id, grace_period_s=-1)
