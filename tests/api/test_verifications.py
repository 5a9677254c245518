"""Verification routes against the real dev server and a real worker (in-process HTTP)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from api.services.verification_workflows import Timeouts
from otp.observability import search_attributes as sa
from otp.settings import Settings
from otp.store import Store
from tests.helpers.api import Keys, code_in, read_code, read_messages, wrong_code


async def _create(http: httpx.AsyncClient, keys: Keys, **body: Any) -> str:
    response = await http.post(
        "/v1/verifications", json={"to": "+14155550123", **body}, headers=keys.test_headers
    )
    assert response.status_code == 201, response.text
    vid: str = response.json()["id"]
    return vid


def _without_request_fields(problem: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in problem.items() if k not in ("instance", "request_id")}


async def test_unknown_id_is_404(http: httpx.AsyncClient, keys: Keys) -> None:
    vid = "ver_" + "q" * 26
    for method, suffix in (
        ("GET", ""),
        ("POST", "/check"),
        ("POST", "/resend"),
        ("POST", "/next-channel"),
        ("POST", "/cancel"),
    ):
        response = await http.request(
            method,
            f"/v1/verifications/{vid}{suffix}",
            json={"code": "123456"} if suffix == "/check" else None,
            headers=keys.test_headers,
        )
        assert response.status_code == 404, (suffix, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "urn:otp:problem:verification-not-found"


@pytest.mark.usefixtures("worker")
async def test_created_workflow_carries_typed_search_attributes(
    http: httpx.AsyncClient, keys: Keys, dev_env: WorkflowEnvironment
) -> None:
    vid = await _create(http, keys, to="+442079460958", brand="Acme")
    description = await dev_env.client.get_workflow_handle(vid).describe()
    attrs = description.typed_search_attributes
    assert attrs.get(sa.STATUS) == "pending"
    assert attrs.get(sa.CHANNEL) == "sms"
    assert attrs.get(sa.COUNTRY) == "GB"
    assert attrs.get(sa.APPLICATION) == "default"
    assert attrs.get(sa.MODE) == "test"
    assert len(vid) == 4 + 26


@pytest.mark.usefixtures("worker")
async def test_live_key_cannot_see_test_verifications(http: httpx.AsyncClient, keys: Keys) -> None:
    vid = await _create(http, keys)
    code = await read_code(http, keys, vid)
    not_found = (await http.get(f"/v1/verifications/{vid}", headers=keys.test_headers)).json()
    for method, suffix in (("GET", ""), ("POST", "/check"), ("POST", "/cancel")):
        response = await http.request(
            method,
            f"/v1/verifications/{vid}{suffix}",
            json={"code": code} if suffix == "/check" else None,
            headers=keys.live_headers,
        )
        assert response.status_code == 404, (suffix, response.text)
        unknown = await http.request(
            method,
            f"/v1/verifications/ver_{'z' * 26}{suffix}",
            json={"code": code} if suffix == "/check" else None,
            headers=keys.live_headers,
        )
        # Someone else's verification is indistinguishable from one that does not exist.
        assert _without_request_fields(response.json()) == _without_request_fields(unknown.json())
        assert response.json()["type"] == "urn:otp:problem:verification-not-found"
    sandbox = await http.get("/v1/sandbox/messages", headers=keys.live_headers)
    assert sandbox.status_code == 403
    assert sandbox.headers["content-type"] == "application/problem+json"
    assert code not in sandbox.text
    # Nothing the live key did touched the verification.
    state = (await http.get(f"/v1/verifications/{vid}", headers=keys.test_headers)).json()
    assert state["status"] == not_found["status"] == "pending"
    assert state["attempts_used"] == 0


@pytest.mark.usefixtures("worker")
async def test_resend_inside_cooldown_is_429_with_retry_after(
    http: httpx.AsyncClient, keys: Keys
) -> None:
    vid = await _create(http, keys)
    await read_messages(http, keys, vid)
    response = await http.post(f"/v1/verifications/{vid}/resend", headers=keys.test_headers)
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 30
    assert response.json()["retry_after"] == retry_after
    assert response.json()["type"] == "urn:otp:problem:resend-cooldown"
    state = (await http.get(f"/v1/verifications/{vid}", headers=keys.test_headers)).json()
    assert state["sends"] == 1


@pytest.mark.usefixtures("worker")
async def test_next_channel_then_no_more_channels(http: httpx.AsyncClient, keys: Keys) -> None:
    vid = await _create(
        http,
        keys,
        channels=[
            {"channel": "sms", "timeout_s": 300},
            {"channel": "email", "to": "Jane@Example.com", "timeout_s": 300},
        ],
    )
    first = await read_messages(http, keys, vid)
    moved = await http.post(f"/v1/verifications/{vid}/next-channel", headers=keys.test_headers)
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert body["id"] == vid
    assert body["step_index"] == 1
    assert body["delivery"]["channel"] == "email"
    assert body["delivery"]["kind"] == "step"
    assert body["delivery"]["status"] == "delivered"
    assert "to" not in body["delivery"]

    messages = await read_messages(http, keys, vid, count=2)
    assert messages[0]["channel"] == "email"
    assert messages[0]["to"] == "Jane@example.com"  # domain normalised by email-validator
    assert code_in(messages[0]) == code_in(first[0])  # a fallback delivers the same code

    again = await http.post(f"/v1/verifications/{vid}/next-channel", headers=keys.test_headers)
    assert again.status_code == 409, again.text
    assert again.json()["type"] == "urn:otp:problem:no-more-channels"

    state = (await http.get(f"/v1/verifications/{vid}", headers=keys.test_headers)).json()
    assert state["current_step"] == 1
    assert [d["channel"] for d in state["deliveries"]] == ["sms", "email"]
    assert state["channels"][1]["to"] == "J***@example.com"


@pytest.mark.usefixtures("worker")
async def test_cancel_then_check_is_409_canceled(http: httpx.AsyncClient, keys: Keys) -> None:
    vid = await _create(http, keys)
    code = await read_code(http, keys, vid)
    canceled = await http.post(f"/v1/verifications/{vid}/cancel", headers=keys.test_headers)
    assert canceled.status_code == 200, canceled.text
    assert canceled.json() == {"id": vid, "status": "canceled"}

    check = await http.post(
        f"/v1/verifications/{vid}/check", json={"code": code}, headers=keys.test_headers
    )
    assert check.status_code == 409, check.text
    assert check.json()["status_of_verification"] == "canceled"

    again = await http.post(f"/v1/verifications/{vid}/cancel", headers=keys.test_headers)
    assert again.status_code == 409
    assert again.json()["status_of_verification"] == "canceled"
    resend = await http.post(f"/v1/verifications/{vid}/resend", headers=keys.test_headers)
    assert resend.status_code == 409

    state = (await http.get(f"/v1/verifications/{vid}", headers=keys.test_headers)).json()
    assert state["status"] == "canceled"
    assert state["attempts_used"] == 0


@pytest.mark.usefixtures("worker")
async def test_max_attempts_then_checks_are_409(http: httpx.AsyncClient, keys: Keys) -> None:
    vid = await _create(http, keys, max_attempts=2, code_type="alphanumeric", code_length=8)
    code = await read_code(http, keys, vid)
    assert len(code) == 8
    url = f"/v1/verifications/{vid}/check"
    first = await http.post(url, json={"code": wrong_code(code)}, headers=keys.test_headers)
    assert first.json() == {"id": vid, "status": "pending", "valid": False, "attempts_remaining": 1}
    last = await http.post(url, json={"code": wrong_code(code)}, headers=keys.test_headers)
    assert last.status_code == 200
    assert last.json() == {
        "id": vid,
        "status": "max_attempts_reached",
        "valid": False,
        "attempts_remaining": 0,
    }
    # Even the right code (in lower case) is refused now, naming why.
    after = await http.post(url, json={"code": code.lower()}, headers=keys.test_headers)
    assert after.status_code == 409, after.text
    assert after.json()["status_of_verification"] == "max_attempts_reached"
    assert after.json()["reason"]


@pytest.mark.usefixtures("worker")
async def test_idempotency_key_returns_the_same_verification(
    http: httpx.AsyncClient, keys: Keys, dev_env: WorkflowEnvironment, api_settings: Settings
) -> None:
    headers = {**keys.test_headers, "Idempotency-Key": "signup-7f3a"}
    body = {"to": "+14155550123", "client_ref": "signup-7"}
    first = await http.post("/v1/verifications", json=body, headers=headers)
    second = await http.post("/v1/verifications", json=body, headers=headers)
    assert first.status_code == second.status_code == 201, (first.text, second.text)
    assert first.json() == second.json()
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"

    # One delivery only: the second request started nothing.
    await read_messages(http, keys, first.json()["id"])

    different = await http.post(
        "/v1/verifications", json={**body, "client_ref": "other"}, headers=headers
    )
    assert different.status_code == 422
    assert different.json()["type"] == "urn:otp:problem:idempotency-key-reused"

    # The same key under the live key is another verification.
    live = await http.post(
        "/v1/verifications",
        json={"to": "jane@example.com"},
        headers={**keys.live_headers, "Idempotency-Key": "signup-7f3a"},
    )
    assert live.status_code == 201
    assert live.json()["id"] != first.json()["id"]

    # Still answered once the verification is finished (the id is never reused).
    vid = first.json()["id"]
    await http.post(f"/v1/verifications/{vid}/cancel", headers=keys.test_headers)
    await dev_env.client.get_workflow_handle(vid).result()
    after = await http.post("/v1/verifications", json=body, headers=headers)
    assert after.status_code == 201, after.text
    assert after.json()["id"] == vid
    assert after.headers["idempotent-replayed"] == "true"


@pytest.mark.usefixtures("worker")
async def test_get_after_close_and_terminated_workflows(
    http: httpx.AsyncClient, keys: Keys, dev_env: WorkflowEnvironment
) -> None:
    vid = await _create(http, keys, channels=[{"channel": "whatsapp"}], locale="pt-BR")
    code = await read_code(http, keys, vid)
    await http.post(
        f"/v1/verifications/{vid}/check", json={"code": code}, headers=keys.test_headers
    )
    await dev_env.client.get_workflow_handle(vid).result()  # closed for sure
    state = (await http.get(f"/v1/verifications/{vid}", headers=keys.test_headers)).json()
    assert state["status"] == "approved"
    assert state["locale"] == "pt-BR"
    check = await http.post(
        f"/v1/verifications/{vid}/check", json={"code": code}, headers=keys.test_headers
    )
    assert check.status_code == 409
    assert check.json()["status_of_verification"] == "approved"

    other = await _create(http, keys)
    await dev_env.client.get_workflow_handle(other).terminate(reason="operator test")
    aborted = await http.post(
        f"/v1/verifications/{other}/check", json={"code": "123456"}, headers=keys.test_headers
    )
    assert aborted.status_code == 409, aborted.text
    assert aborted.json()["type"] == "urn:otp:problem:verification-aborted"
    assert aborted.json()["execution_status"] == "terminated"


async def test_no_worker_means_503_with_retry_after_not_a_hang(
    api_settings: Settings, dev_env: WorkflowEnvironment, store: Store, keys: Keys
) -> None:
    fast = Timeouts(update=timedelta(seconds=0.5), delivery_update=timedelta(seconds=0.5))
    app = create_app(api_settings, client=dev_env.client, store=store, timeouts=fast)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api.test"
    ) as http:
        vid = await _create(http, keys)  # starting needs only the server
        response = await http.post(
            f"/v1/verifications/{vid}/check", json={"code": "123456"}, headers=keys.test_headers
        )
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert int(response.headers["retry-after"]) >= 1
        await dev_env.client.get_workflow_handle(vid).terminate(reason="test cleanup")


@pytest.mark.usefixtures("worker")
async def test_logs_carry_ids_but_no_code_destination_or_key(
    http: httpx.AsyncClient, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):  # the default; at DEBUG aiosqlite logs SQL parameters
        vid = await _create(http, keys, to="jane.doe@example.com")
        code = await read_code(http, keys, vid)
        url = f"/v1/verifications/{vid}/check"
        await http.post(url, json={"code": wrong_code(code)}, headers=keys.test_headers)
        await http.post(url, json={"code": code}, headers=keys.test_headers)
    api_records = [r for r in caplog.records if r.name == "otp.api"]
    assert {r.getMessage() for r in api_records} >= {"verification started", "code checked"}
    assert all(r.__dict__.get("verification_id") == vid for r in api_records)
    for record in caplog.records:
        text = record.getMessage() + " " + str(record.__dict__)
        for secret in (code, wrong_code(code), "jane.doe@example.com", keys.test):
            assert secret not in text, (record.name, record.getMessage())
