"""Delivery-receipt webhooks against the real dev server and a real worker.

Signatures are computed here from the providers' published rules (not with the
production helpers): Twilio's base64 HMAC-SHA1 over the URL + sorted form parameters,
Meta's `sha256=` + hex HMAC-SHA256 over the raw body.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from pydantic import SecretStr
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from api.services.verification_workflows import Timeouts
from otp.domain import DeliveryStatus, VerificationState
from otp.settings import Settings
from otp.store import Store
from tests.conftest import real_worker
from tests.helpers.api import Keys
from workflows.verification import VerificationWorkflow

TWILIO_TOKEN = "twilio-test-auth-token-0123456789"
META_SECRET = "meta-test-app-secret-abcdef"
META_VERIFY = "meta-test-verify-token"
BASE = "http://api.test"
TWILIO_PATH = "/v1/webhooks/twilio/status"
PHONE = "+14155550123"
PLAN = [
    {"channel": "sms", "timeout_s": 300},
    {"channel": "email", "to": "user@example.com", "timeout_s": 300},
]


# ------------------------------------------------------------ independent signers
def twilio_signature(token: str, url: str, params: dict[str, str]) -> str:
    """Twilio's rule: URL + each POST parameter sorted by name, name then value."""
    data = url + "".join(name + params[name] for name in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def meta_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_the_test_signer_matches_twilios_published_example() -> None:
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature("12345", url, params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


# ------------------------------------------------------------------- fixtures
@pytest.fixture
def hook_settings(api_settings: Settings) -> Settings:
    return api_settings.model_copy(
        update={
            "twilio_auth_token": SecretStr(TWILIO_TOKEN),
            "meta_app_secret": SecretStr(META_SECRET),
            "meta_verify_token": SecretStr(META_VERIFY),
        }
    )


@asynccontextmanager
async def serve(
    settings: Settings, client: Client, store: Store, timeouts: Timeouts | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, client=client, store=store, timeouts=timeouts)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        yield http


@pytest.fixture
async def hooks(
    hook_settings: Settings, dev_env: WorkflowEnvironment, store: Store
) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(hook_settings, dev_env.client, store) as http:
        yield http


@pytest.fixture
async def worker(
    dev_env: WorkflowEnvironment, hook_settings: Settings, store: Store
) -> AsyncIterator[None]:
    async with real_worker(dev_env.client, hook_settings, store):
        yield


# -------------------------------------------------------------------- helpers
Handle = WorkflowHandle[VerificationWorkflow, VerificationState]


async def start(http: httpx.AsyncClient, keys: Keys, dev_env: WorkflowEnvironment) -> Handle:
    """A test-mode verification with a 2-step plan whose first step waits 300 s."""
    response = await http.post(
        "/v1/verifications", json={"to": PHONE, "channels": PLAN}, headers=keys.test_headers
    )
    assert response.status_code == 201, response.text
    return dev_env.client.get_workflow_handle_for(VerificationWorkflow.run, response.json()["id"])


async def wait_for(
    handle: Handle, predicate: Callable[[VerificationState], bool], *, within: float = 10.0
) -> VerificationState:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        state = await handle.query(VerificationWorkflow.state)
        if predicate(state):
            return state
        assert asyncio.get_running_loop().time() < deadline, state
        await asyncio.sleep(0.03)


async def first_send(handle: Handle) -> tuple[str, str]:
    """The sandbox message id the workflow recorded for step 1, and a delivery key for it."""
    state = await wait_for(
        handle, lambda s: bool(s.deliveries) and s.deliveries[0].provider_message_id is not None
    )
    message_id = state.deliveries[0].provider_message_id
    assert message_id is not None
    run_id = (await handle.describe()).run_id
    return message_id, f"{handle.id}:{run_id}:1"


def twilio_failed(message_id: str) -> dict[str, str]:
    """A message status callback as Twilio sends it for an undeliverable SMS."""
    return {
        "AccountSid": "AC" + "0" * 32,
        "ApiVersion": "2010-04-01",
        "From": "+15005550006",
        "To": PHONE,
        "MessageSid": message_id,
        "SmsSid": message_id,
        "MessageStatus": "failed",
        "SmsStatus": "failed",
        "ErrorCode": "30003",
    }


def callback_path(reference: str) -> str:
    return f"{TWILIO_PATH}?ref={quote(reference, safe='')}"


async def post_twilio(
    http: httpx.AsyncClient, path: str, form: dict[str, str], signature: str | None
) -> httpx.Response:
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    return await http.post(path, data=form, headers=headers)


async def signal_count(handle: Handle) -> int:
    history = await handle.fetch_history()
    return sum(
        1
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    )


def assert_problem(response: httpx.Response, status: int, slug: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == f"urn:otp:problem:{slug}"


# ---------------------------------------------------------------------- Twilio
@pytest.mark.usefixtures("worker")
async def test_signed_twilio_failure_moves_the_plan_on_at_once(
    hooks: httpx.AsyncClient,
    keys: Keys,
    dev_env: WorkflowEnvironment,
    caplog: pytest.LogCaptureFixture,
) -> None:
    handle = await start(hooks, keys, dev_env)
    message_id, reference = await first_send(handle)
    path = callback_path(reference)
    form = twilio_failed(message_id)
    signature = twilio_signature(TWILIO_TOKEN, BASE + path, form)

    with caplog.at_level(logging.DEBUG, logger="otp"):
        response = await post_twilio(hooks, path, form, signature)
    assert response.status_code == 204, response.text
    assert response.content == b""
    state = await wait_for(handle, lambda s: s.current_step == 1, within=2.0)
    assert state.deliveries[0].status is DeliveryStatus.FAILED
    assert state.deliveries[0].error_type == "30003"
    # The next step (email) was delivered by the workflow itself.
    state = await wait_for(handle, lambda s: len(s.deliveries) == 2)
    assert state.deliveries[1].step_index == 1
    public = (await hooks.get(f"/v1/verifications/{handle.id}", headers=keys.test_headers)).json()
    assert public["current_step"] == 1
    assert public["deliveries"][0]["status"] == "failed"
    # Logged with the ids, never the destination, the signature or the token.
    logged = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    assert handle.id in logged and message_id in logged
    for secret in (PHONE, PHONE[1:], signature, TWILIO_TOKEN):
        assert secret not in logged


@pytest.mark.usefixtures("worker")
async def test_unsigned_or_badly_signed_twilio_callbacks_are_refused_and_change_nothing(
    hooks: httpx.AsyncClient, keys: Keys, dev_env: WorkflowEnvironment
) -> None:
    handle = await start(hooks, keys, dev_env)
    message_id, reference = await first_send(handle)
    before = await handle.query(VerificationWorkflow.state)
    signals_before = await signal_count(handle)
    path = callback_path(reference)
    form = twilio_failed(message_id)
    other_path = callback_path(f"ver_{'q' * 26}:run:1")
    attempts = {
        "unsigned": None,
        "empty": "",
        "wrong token": twilio_signature("not-the-auth-token", BASE + path, form),
        "other url": twilio_signature(TWILIO_TOKEN, BASE + other_path, form),
        "other host": twilio_signature(TWILIO_TOKEN, "https://evil.example.com" + path, form),
        "other params": twilio_signature(
            TWILIO_TOKEN, BASE + path, {**form, "MessageStatus": "delivered"}
        ),
        "garbage": "bm90IGEgc2lnbmF0dXJl",
    }
    for name, signature in attempts.items():
        response = await post_twilio(hooks, path, form, signature)
        assert_problem(response, 403, "invalid-signature")
        assert name and "30003" not in response.text

    await asyncio.sleep(0.3)
    after = await handle.query(VerificationWorkflow.state)
    assert after.current_step == before.current_step == 0
    assert [d.status for d in after.deliveries] == [d.status for d in before.deliveries]
    assert await signal_count(handle) == signals_before == 0


@pytest.mark.usefixtures("worker")
async def test_twilio_signature_is_checked_over_the_public_url(
    hook_settings: Settings,
    keys: Keys,
    dev_env: WorkflowEnvironment,
    store: Store,
) -> None:
    # A trailing slash in the setting must not change the signed URL.
    settings = hook_settings.model_copy(update={"public_url": "https://otp.example.com/"})
    async with serve(settings, dev_env.client, store) as http:
        handle = await start(http, keys, dev_env)
        message_id, reference = await first_send(handle)
        path = callback_path(reference)
        form = twilio_failed(message_id)

        # Signed over the URL the proxy forwarded to: not what Twilio called.
        internal = twilio_signature(TWILIO_TOKEN, BASE + path, form)
        assert_problem(await post_twilio(http, path, form, internal), 403, "invalid-signature")

        public = twilio_signature(TWILIO_TOKEN, "https://otp.example.com" + path, form)
        assert (await post_twilio(http, path, form, public)).status_code == 204
        await wait_for(handle, lambda s: s.current_step == 1, within=2.0)


@pytest.mark.usefixtures("worker")
async def test_genuine_callbacks_that_cannot_matter_are_accepted(
    hooks: httpx.AsyncClient, keys: Keys, dev_env: WorkflowEnvironment
) -> None:
    async def signed(path: str, form: dict[str, str]) -> httpx.Response:
        return await post_twilio(
            hooks, path, form, twilio_signature(TWILIO_TOKEN, BASE + path, form)
        )

    # No such verification.
    unknown = callback_path(f"ver_{'q' * 26}:run:1")
    assert (await signed(unknown, twilio_failed("SM" + "1" * 32))).status_code == 204

    # A verification that has finished: the receipt came too late to matter.
    handle = await start(hooks, keys, dev_env)
    message_id, reference = await first_send(handle)
    canceled = await hooks.post(f"/v1/verifications/{handle.id}/cancel", headers=keys.test_headers)
    assert canceled.status_code == 200, canceled.text
    final = await handle.result()
    response = await signed(callback_path(reference), twilio_failed(message_id))
    assert response.status_code == 204, response.text
    assert (await handle.query(VerificationWorkflow.state)).status == final.status

    # Nothing usable: no delivery key, a key that names no verification, no status.
    assert (await signed(TWILIO_PATH, twilio_failed(message_id))).status_code == 204
    assert (await signed(callback_path("sbx-key"), twilio_failed(message_id))).status_code == 204
    no_status = {"MessageSid": message_id, "AccountSid": "AC" + "0" * 32}
    assert (await signed(callback_path(reference), no_status)).status_code == 204


async def test_call_status_callbacks_are_read_too(hooks: httpx.AsyncClient) -> None:
    path = callback_path(f"ver_{'q' * 26}:run:2")
    form = {"CallSid": "CA" + "2" * 32, "CallStatus": "no-answer", "CallDuration": "0"}
    response = await post_twilio(
        hooks, path, form, twilio_signature(TWILIO_TOKEN, BASE + path, form)
    )
    assert response.status_code == 204, response.text


@asynccontextmanager
async def tcp_proxy(target: str) -> AsyncIterator[tuple[str, Callable[[], None]]]:
    """A TCP proxy to `target`; the callable cuts every connection and stops listening."""
    host, port = target.rsplit(":", 1)
    writers: list[asyncio.StreamWriter] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        writers.extend((writer, up_writer))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    listen_port = server.sockets[0].getsockname()[1]

    def cut() -> None:
        server.close()
        for writer in writers:
            writer.transport.abort()

    try:
        yield f"127.0.0.1:{listen_port}", cut
    finally:
        cut()


async def test_twilio_callback_when_temporal_is_down_is_503(
    hook_settings: Settings, dev_env: WorkflowEnvironment, store: Store
) -> None:
    target = dev_env.client.service_client.config.target_host
    async with tcp_proxy(target) as (address, cut):
        client = await Client.connect(address, data_converter=dev_env.client.data_converter)
        timeouts = Timeouts(rpc=timedelta(seconds=1))
        async with serve(hook_settings, client, store, timeouts) as http:
            path = callback_path(f"ver_{'q' * 26}:run:1")
            form = twilio_failed("SM" + "3" * 32)
            signature = twilio_signature(TWILIO_TOKEN, BASE + path, form)
            assert (await post_twilio(http, path, form, signature)).status_code == 204
            cut()  # Temporal becomes unreachable
            response = await post_twilio(http, path, form, signature)
    assert_problem(response, 503, "service-unavailable")
    assert response.headers["retry-after"]


async def test_unconfigured_webhooks_are_404(http: httpx.AsyncClient) -> None:
    path = callback_path(f"ver_{'q' * 26}:run:1")
    form = twilio_failed("SM" + "4" * 32)
    twilio = await post_twilio(http, path, form, twilio_signature(TWILIO_TOKEN, BASE + path, form))
    assert_problem(twilio, 404, "webhook-not-configured")
    handshake = await http.get(
        "/v1/webhooks/meta",
        params={"hub.mode": "subscribe", "hub.verify_token": META_VERIFY, "hub.challenge": "1"},
    )
    assert_problem(handshake, 404, "webhook-not-configured")
    body = b'{"object":"whatsapp_business_account","entry":[]}'
    meta = await http.post(
        "/v1/webhooks/meta",
        content=body,
        headers={"X-Hub-Signature-256": meta_signature(META_SECRET, body)},
    )
    assert_problem(meta, 404, "webhook-not-configured")


async def test_oversized_bodies_are_refused(hooks: httpx.AsyncClient) -> None:
    form = {"MessageSid": "SM" + "5" * 32, "Padding": "x" * 70_000}
    response = await post_twilio(hooks, TWILIO_PATH, form, "sig")
    assert_problem(response, 413, "payload-too-large")


# ------------------------------------------------------------------------ Meta
async def test_meta_subscription_handshake(hooks: httpx.AsyncClient) -> None:
    ok = await hooks.get(
        "/v1/webhooks/meta",
        params={
            "hub.mode": "subscribe",
            "hub.verify_token": META_VERIFY,
            "hub.challenge": "1158201444",
        },
    )
    assert ok.status_code == 200, ok.text
    assert ok.text == "1158201444"
    assert ok.headers["content-type"].startswith("text/plain")

    for params in (
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": META_VERIFY, "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
        {},
    ):
        assert_problem(
            await hooks.get("/v1/webhooks/meta", params=params), 403, "invalid-signature"
        )


def meta_status_payload(statuses: list[dict[str, Any]]) -> bytes:
    """A `messages` webhook as WhatsApp Cloud API sends it (statuses + an inbound message)."""
    payload = {
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
                            "statuses": statuses,
                        },
                    },
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "messages": [{"from": "14155550123", "id": "wamid.in", "type": "text"}],
                        },
                    },
                ],
            }
        ],
    }
    # Meta's bodies are compact JSON with non-ASCII escaped; the signature covers these bytes.
    return json.dumps(payload, separators=(",", ":")).encode()


@pytest.mark.usefixtures("worker")
async def test_signed_meta_failure_moves_the_plan_on_and_bad_signatures_are_refused(
    hooks: httpx.AsyncClient, keys: Keys, dev_env: WorkflowEnvironment
) -> None:
    handle = await start(hooks, keys, dev_env)
    message_id, reference = await first_send(handle)
    body = meta_status_payload(
        [
            {
                "id": "wamid.unmapped",  # no delivery key: cannot be mapped, still a 200
                "status": "sent",
                "timestamp": "1750857384",
                "recipient_id": "14155550123",
            },
            {
                "id": message_id,
                "status": "failed",
                "timestamp": "1750857385",
                "recipient_id": "14155550123",
                "biz_opaque_callback_data": reference,
                "errors": [{"code": 131026, "title": "Message undeliverable"}],
            },
        ]
    )

    for signature in (None, "", meta_signature("not-the-app-secret", body), "sha256=00"):
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["X-Hub-Signature-256"] = signature
        response = await hooks.post("/v1/webhooks/meta", content=body, headers=headers)
        assert_problem(response, 403, "invalid-signature")
    # Signed, but over other bytes than were sent.
    tampered = await hooks.post(
        "/v1/webhooks/meta",
        content=body.replace(b'"failed"', b'"delivered"'),
        headers={"X-Hub-Signature-256": meta_signature(META_SECRET, body)},
    )
    assert_problem(tampered, 403, "invalid-signature")
    await asyncio.sleep(0.2)
    assert (await handle.query(VerificationWorkflow.state)).current_step == 0
    assert await signal_count(handle) == 0

    response = await hooks.post(
        "/v1/webhooks/meta",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Hub-Signature-256": meta_signature(META_SECRET, body),
        },
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"statuses": 2, "forwarded": 1}
    state = await wait_for(handle, lambda s: s.current_step == 1, within=2.0)
    assert state.deliveries[0].status is DeliveryStatus.FAILED
    assert state.deliveries[0].error_type == "131026"

    # A genuine but unreadable delivery is acknowledged and ignored.
    junk = b"not json"
    response = await hooks.post(
        "/v1/webhooks/meta",
        content=junk,
        headers={"X-Hub-Signature-256": meta_signature(META_SECRET, junk)},
    )
    assert response.status_code == 200
    assert response.json() == {"statuses": 0, "forwarded": 0}


# --------------------------------------------------------------------- OpenAPI
async def test_webhooks_are_documented_without_api_key_auth(hooks: httpx.AsyncClient) -> None:
    doc = (await hooks.get("/openapi.json")).json()
    twilio = doc["paths"]["/v1/webhooks/twilio/status"]["post"]
    meta_get = doc["paths"]["/v1/webhooks/meta"]["get"]
    meta_post = doc["paths"]["/v1/webhooks/meta"]["post"]
    for operation in (twilio, meta_get, meta_post):
        assert operation["tags"] == ["webhooks"]
        assert "security" not in operation
        assert operation["responses"]["403"]["content"] == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }
    assert "204" in twilio["responses"]
    assert "application/x-www-form-urlencoded" in twilio["requestBody"]["content"]
    assert {p["name"] for p in twilio["parameters"]} == {"ref", "account", "X-Twilio-Signature"}
    assert {p["name"] for p in meta_get["parameters"]} == {
        "hub.mode",
        "hub.verify_token",
        "hub.challenge",
        "account",
    }
    assert {p["name"] for p in meta_post["parameters"]} == {"X-Hub-Signature-256", "account"}
    assert "webhooks" in {tag["name"] for tag in doc["tags"]}
