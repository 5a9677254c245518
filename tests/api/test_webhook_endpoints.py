"""/v1/webhook-endpoints against the real dev server, a real worker and a real receiver."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from tests.helpers.api import Keys
from tests.helpers.webhook_receiver import Receiver, Reply, serve, spec_verify

BASE = "/v1/webhook-endpoints"


async def _create(http: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await http.post(BASE, json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_crud_is_scoped_to_the_key_mode(http: httpx.AsyncClient, keys: Keys) -> None:
    created = await _create(
        http,
        keys.test_headers,
        url="http://127.0.0.1:9/hook",
        description="local",
        event_types=["verification.approved"],
    )
    endpoint_id = created["id"]
    assert created["secret"].startswith("whsec_")
    assert created["enabled"] and created["mode"] == "test"
    assert created["event_types"] == ["verification.approved"]

    one = await http.get(f"{BASE}/{endpoint_id}", headers=keys.test_headers)
    assert one.status_code == 200 and "secret" not in one.json()
    secret = await http.get(f"{BASE}/{endpoint_id}/secret", headers=keys.test_headers)
    assert secret.json() == {"secret": created["secret"]}
    listed = await http.get(BASE, headers=keys.test_headers)
    assert [e["id"] for e in listed.json()["endpoints"]] == [endpoint_id]

    # The live key of the same application sees none of it.
    assert (await http.get(BASE, headers=keys.live_headers)).json() == {"endpoints": []}
    for method, suffix in (("GET", ""), ("GET", "/secret"), ("DELETE", ""), ("POST", "/test")):
        response = await http.request(
            method, f"{BASE}/{endpoint_id}{suffix}", headers=keys.live_headers
        )
        assert response.status_code == 404, (method, suffix, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("webhook-endpoint-not-found")

    patched = await http.patch(
        f"{BASE}/{endpoint_id}",
        json={"enabled": False, "event_types": [], "description": "paused"},
        headers=keys.test_headers,
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert not body["enabled"] and body["disabled_reason"] and body["event_types"] == []
    assert body["description"] == "paused" and body["url"] == "http://127.0.0.1:9/hook"
    refused = await http.post(f"{BASE}/{endpoint_id}/test", headers=keys.test_headers)
    assert refused.status_code == 409, refused.text

    deleted = await http.delete(f"{BASE}/{endpoint_id}", headers=keys.test_headers)
    assert deleted.status_code == 204
    gone = await http.get(f"{BASE}/{endpoint_id}", headers=keys.test_headers)
    assert gone.status_code == 404


async def test_requests_need_a_key_and_valid_input(http: httpx.AsyncClient, keys: Keys) -> None:
    assert (await http.get(BASE)).status_code == 401
    bad_type = await http.post(
        BASE, json={"url": "http://127.0.0.1/x", "event_types": ["nope"]}, headers=keys.test_headers
    )
    assert bad_type.status_code == 422
    extra = await http.post(
        BASE, json={"url": "http://127.0.0.1/x", "secret": "mine"}, headers=keys.test_headers
    )
    assert extra.status_code == 422
    malformed_id = await http.get(f"{BASE}/nope", headers=keys.test_headers)
    assert malformed_id.status_code == 422


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.1.2.3/hook",
        "https://[::1]/hook",
        "https://localhost/hook",
        "https://user:secret@example.com/hook",
    ],
)
async def test_live_mode_refuses_unsafe_urls(http: httpx.AsyncClient, keys: Keys, url: str) -> None:
    response = await http.post(BASE, json={"url": url}, headers=keys.live_headers)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["errors"][0]["pointer"] == "#/url"
    assert problem["errors"][0]["type"] == "unsafe_url"
    assert (await http.get(BASE, headers=keys.live_headers)).json() == {"endpoints": []}


async def test_live_mode_accepts_public_https_and_refuses_unsafe_patches(
    http: httpx.AsyncClient, keys: Keys
) -> None:
    created = await _create(http, keys.live_headers, url="https://93.184.216.34/hook")
    assert created["mode"] == "live"
    patched = await http.patch(
        f"{BASE}/{created['id']}", json={"url": "https://192.168.0.10/x"}, headers=keys.live_headers
    )
    assert patched.status_code == 422, patched.text
    still = await http.get(f"{BASE}/{created['id']}", headers=keys.live_headers)
    assert still.json()["url"] == "https://93.184.216.34/hook"


async def _wait_for_status(
    http: httpx.AsyncClient, keys: Keys, endpoint_id: str, status: str
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        response = await http.get(f"{BASE}/{endpoint_id}/messages", headers=keys.test_headers)
        assert response.status_code == 200, response.text
        messages: list[dict[str, Any]] = response.json()["messages"]
        if messages and messages[0]["status"] == status:
            return messages[0]
        assert asyncio.get_running_loop().time() < deadline, messages
        await asyncio.sleep(0.1)


@pytest.mark.usefixtures("worker")
async def test_test_event_is_delivered_signed_through_the_durable_path(
    http: httpx.AsyncClient, keys: Keys
) -> None:
    receiver = Receiver([Reply(200)])
    async with serve(receiver):
        created = await _create(http, keys.test_headers, url=receiver.url)
        endpoint_id, secret = created["id"], created["secret"]
        sent = await http.post(f"{BASE}/{endpoint_id}/test", headers=keys.test_headers)
        assert sent.status_code == 202, sent.text
        message_id = sent.json()["message_id"]
        (request,) = await receiver.wait_for(1)
        message = await _wait_for_status(http, keys, endpoint_id, "succeeded")

    assert request.headers["webhook-id"] == message_id
    assert spec_verify(secret, request.headers, request.body)
    payload = json.loads(request.body)
    assert payload["type"] == "webhook.test"
    assert payload["data"]["endpoint_id"] == endpoint_id and payload["data"]["mode"] == "test"
    assert message["message_id"] == message_id and message["event_type"] == "webhook.test"
    assert (message["attempts"], message["last_status_code"]) == (1, 200)

    attempts = await http.get(
        f"{BASE}/{endpoint_id}/messages/{message_id}/attempts", headers=keys.test_headers
    )
    assert attempts.status_code == 200, attempts.text
    (attempt,) = attempts.json()["attempts"]
    assert attempt["attempt"] == 1 and attempt["status_code"] == 200 and attempt["error"] is None
    missing = await http.get(
        f"{BASE}/{endpoint_id}/messages/msg_{'a' * 26}/attempts", headers=keys.test_headers
    )
    assert missing.status_code == 404
    assert missing.json()["type"].endswith("webhook-message-not-found")


@pytest.mark.usefixtures("worker")
async def test_gone_disables_the_endpoint(http: httpx.AsyncClient, keys: Keys) -> None:
    receiver = Receiver([Reply(410)])
    async with serve(receiver):
        created = await _create(http, keys.test_headers, url=receiver.url)
        sent = await http.post(f"{BASE}/{created['id']}/test", headers=keys.test_headers)
        assert sent.status_code == 202
        message = await _wait_for_status(http, keys, created["id"], "disabled")
    assert message["last_status_code"] == 410
    endpoint = (await http.get(f"{BASE}/{created['id']}", headers=keys.test_headers)).json()
    assert not endpoint["enabled"] and "410" in endpoint["disabled_reason"]
    reenabled = await http.patch(
        f"{BASE}/{created['id']}", json={"enabled": True}, headers=keys.test_headers
    )
    assert reenabled.json()["enabled"] and reenabled.json()["disabled_reason"] is None
