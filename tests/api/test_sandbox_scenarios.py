"""Sandbox scenarios through the admin API, with a test key, the real worker and dev server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from otp.settings import Secrets, Settings
from otp.store import Store
from otp.store.applications import ensure_default_application
from otp.store.tables import SandboxScenarioRow
from tests.helpers.api import Keys, code_in, make_settings, read_messages
from tests.helpers.webhook_receiver import Receiver, Reply, serve

ADMIN = {"Authorization": "Bearer admin-token-for-the-scenario-tests-0123456789"}
BASE = "/v1/admin/applications/default/sandbox-scenarios"
MAIL = "qa@example.com"


@pytest.fixture
def api_settings(data_dir: Path, task_queue: str, secrets: Secrets, keys: Keys) -> Settings:
    token = ADMIN["Authorization"].removeprefix("Bearer ")
    return make_settings(data_dir, task_queue, secrets, keys).model_copy(
        update={"admin_token": SecretStr(token)}
    )


@pytest.fixture(autouse=True)
async def default_application(store: Store) -> None:
    await ensure_default_application(store)


async def _scenario(http: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await http.post(BASE, json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _start(http: httpx.AsyncClient, keys: Keys, to: str, timeout_s: int = 300) -> str:
    """SMS to `to`, then email to MAIL."""
    response = await http.post(
        "/v1/verifications",
        json={
            "to": to,
            "channels": [
                {"channel": "sms", "timeout_s": timeout_s},
                {"channel": "email", "to": MAIL, "timeout_s": 300},
            ],
        },
        headers=keys.test_headers,
    )
    assert response.status_code == 201, response.text
    vid: str = response.json()["id"]
    return vid


async def _state_when(
    http: httpx.AsyncClient, keys: Keys, vid: str, ok: Any, timeout: float = 20
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        state: dict[str, Any] = (
            await http.get(f"/v1/verifications/{vid}", headers=keys.test_headers)
        ).json()
        if ok(state):
            return state
        assert asyncio.get_running_loop().time() < deadline, state
        await asyncio.sleep(0.1)


async def _events(http: httpx.AsyncClient, keys: Keys, vid: str) -> list[dict[str, Any]]:
    response = await http.get(f"/v1/verifications/{vid}/events", headers=keys.test_headers)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["data"]
    return events


async def _final_types(http: httpx.AsyncClient, keys: Keys, vid: str, last: str) -> list[str]:
    for _ in range(200):
        types = [e["type"] for e in await _events(http, keys, vid)]
        if last in types:
            return types
        await asyncio.sleep(0.05)
    raise AssertionError(f"{last} never logged for {vid}")


def _on_email(state: dict[str, Any]) -> bool:
    return state["current_step"] == 1 and len(state["deliveries"]) == 2


async def test_admin_routes_list_add_remove_and_refuse_bad_input(
    http: httpx.AsyncClient, store: Store
) -> None:
    assert (await http.get(BASE)).status_code == 401
    created = await _scenario(
        http, kind="provider_error", to="+44 7400 123123", error_code="21211", note="qa"
    )
    assert created["id"].startswith("sbs_") and created["to"] == "+44********23"
    async with store.session() as session:  # the destination is kept as a keyed hash only
        row = await session.get(SandboxScenarioRow, created["id"])
    assert row is not None and row.to_hash and "7400123123" not in row.model_dump_json()
    for bad in (
        {"kind": "provider_error", "to": "+447400123123"},  # no code
        {"kind": "delay", "country": "GB"},  # no delay
        {"kind": "no_receipt"},  # no destination
        {"kind": "no_receipt", "to": "not a number"},
        {"kind": "webhook_failure", "status_code": 503, "country": "GB"},
        {"kind": "teleport", "country": "GB"},
        {"kind": "no_receipt", "country": "GB", "secret": "x"},
    ):
        refused = await http.post(BASE, json=bad, headers=ADMIN)
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
    listed = (await http.get(BASE, headers=ADMIN)).json()["scenarios"]
    assert [s["id"] for s in listed] == [created["id"]]  # nothing else was stored
    unknown = await http.get("/v1/admin/applications/app_nope/sandbox-scenarios", headers=ADMIN)
    assert unknown.status_code == 404
    removed = await http.delete(f"{BASE}/{created['id']}", headers=ADMIN)
    assert removed.status_code == 200 and removed.json()["id"] == created["id"]
    again = await http.delete(f"{BASE}/{created['id']}", headers=ADMIN)
    assert again.status_code == 404
    assert again.json()["type"].endswith("sandbox-scenario-not-found")
    assert (await http.get(BASE, headers=ADMIN)).json()["scenarios"] == []


@pytest.mark.usefixtures("worker")
async def test_provider_errors_fail_the_step_with_their_code(
    http: httpx.AsyncClient, keys: Keys
) -> None:
    await _scenario(http, kind="provider_error", to="+447400100001", error_code="21211")
    await _scenario(http, kind="provider_error", prefix="+4474001232", error_code="30007")
    invalid = await _start(http, keys, "+447400100001")
    filtered = await _start(http, keys, "+447400123222")

    state = await _state_when(http, keys, invalid, _on_email)
    first = state["deliveries"][0]
    assert first["status"] == "failed"
    failed = [e for e in await _events(http, keys, invalid) if e["type"] == "failed"]
    assert failed[0]["reason"] == "21211" and failed[0]["channel"] == "sms"
    assert (await read_messages(http, keys, invalid))[0]["channel"] == "email"

    state = await _state_when(http, keys, filtered, _on_email)
    assert state["deliveries"][0]["status"] == "failed"
    assert state["deliveries"][0]["error_type"] == "30007"  # the failed receipt's code
    assert (await read_messages(http, keys, filtered))[0]["channel"] == "email"


@pytest.mark.usefixtures("worker")
async def test_down_never_delivered_delay_and_delivered_then_failed(
    http: httpx.AsyncClient, keys: Keys
) -> None:
    # By country: the exact-destination scenarios below come first for their numbers.
    await _scenario(http, kind="provider_down", country="GB", channel="sms")
    await _scenario(http, kind="no_receipt", to="+447400100444")
    await _scenario(http, kind="delay", to="+447400100555", delay_s=2)
    await _scenario(http, kind="delivered_then_failed", to="+447400100666", delay_s=1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    down = await _start(http, keys, "+447400123333", timeout_s=5)
    silent = await _start(http, keys, "+447400100444", timeout_s=5)
    delayed = await _start(http, keys, "+447400100555")
    bounced = await _start(http, keys, "+447400100666")

    # Delayed: the SMS reaches the inbox only after the delay, and works.
    (message,) = await read_messages(http, keys, delayed)
    assert message["channel"] == "sms" and loop.time() - started >= 2
    checked = await http.post(
        f"/v1/verifications/{delayed}/check",
        json={"code": code_in(message)},
        headers=keys.test_headers,
    )
    assert checked.json()["status"] == "approved", checked.text

    # Delivered, then a failed receipt: the plan falls back at once to email.
    state = await _state_when(http, keys, bounced, _on_email)
    assert state["deliveries"][0]["status"] == "failed"
    assert state["deliveries"][0]["error_type"] == "30003"
    assert [m["channel"] for m in await read_messages(http, keys, bounced, count=2)] == [
        "email",
        "sms",
    ]
    # The event log is complete once the verification ends (its final batch).
    await http.post(f"/v1/verifications/{bounced}/cancel", headers=keys.test_headers)
    types = await _final_types(http, keys, bounced, "canceled")
    assert types.index("sent") < types.index("failed") < types.index("fallback"), types

    # Down: every try fails transiently until the step's end, then the next step runs.
    state = await _state_when(http, keys, down, _on_email)
    assert state["deliveries"][0]["status"] == "failed"
    errors = [e for e in await _events(http, keys, down) if e["type"] == "send_error"]
    assert errors and all(e["reason"].startswith("provider_down") for e in errors), errors
    assert (await read_messages(http, keys, down))[0]["channel"] == "email"

    # Never delivered: no receipt, no inbox message; the step timer falls back.
    state = await _state_when(http, keys, silent, _on_email)
    assert state["deliveries"][0]["status"] == "sent"  # never a receipt
    assert loop.time() - started >= 5
    assert [m["channel"] for m in await read_messages(http, keys, silent)] == ["email"]


@pytest.mark.usefixtures("worker")
async def test_fraud_block_refuses_the_create_like_a_risk_block(
    http: httpx.AsyncClient, keys: Keys
) -> None:
    await _scenario(http, kind="fraud_block", country="GB", channel="sms")
    refused = await http.post(
        "/v1/verifications", json={"to": "+447400100777"}, headers=keys.test_headers
    )
    assert refused.status_code == 403, refused.text
    problem = refused.json()
    assert problem["type"] == "urn:otp:problem:risk-policy"
    assert (problem["reason"], problem["step_index"]) == ("scope_blocked", 0)
    assert "447700900777" not in refused.text
    # Another country, or the same number on another channel, goes through.
    fine = await http.post(
        "/v1/verifications", json={"to": "+14155550123"}, headers=keys.test_headers
    )
    assert fine.status_code == 201, fine.text


@pytest.mark.usefixtures("worker")
async def test_magic_numbers_keep_working_and_a_matching_scenario_comes_first(
    http: httpx.AsyncClient, keys: Keys
) -> None:
    await _scenario(http, kind="provider_error", to="+15005550003", error_code="21610")
    magic = await _start(http, keys, "+15005550001")  # invalid number, no scenario for it
    overridden = await _start(http, keys, "+15005550003")  # would be "never a receipt"
    for vid, reason in ((magic, "invalid_number"), (overridden, "21610")):
        await _state_when(http, keys, vid, _on_email)
        failed = [e for e in await _events(http, keys, vid) if e["type"] == "failed"]
        assert failed[0]["reason"] == reason, failed


@pytest.mark.usefixtures("worker")
async def test_webhook_failures_are_attempts_with_the_status_and_are_retried(
    http: httpx.AsyncClient, keys: Keys
) -> None:
    await _scenario(http, kind="webhook_failure", status_code=503)
    receiver = Receiver([Reply(200)])
    async with serve(receiver):
        created = await http.post(
            "/v1/webhook-endpoints", json={"url": receiver.url}, headers=keys.test_headers
        )
        assert created.status_code == 201, created.text
        endpoint = created.json()["id"]
        sent = await http.post(f"/v1/webhook-endpoints/{endpoint}/test", headers=keys.test_headers)
        assert sent.status_code == 202, sent.text
        message_id = sent.json()["message_id"]
        path = f"/v1/webhook-endpoints/{endpoint}/messages/{message_id}/attempts"
        deadline = asyncio.get_running_loop().time() + 20
        while True:  # the first retry comes about 5 s after the first attempt
            attempts = (await http.get(path, headers=keys.test_headers)).json()["attempts"]
            if len(attempts) >= 2:
                break
            assert asyncio.get_running_loop().time() < deadline, attempts
            await asyncio.sleep(0.2)
        assert receiver.requests == []  # the endpoint is never contacted
    assert [(a["attempt"], a["status_code"]) for a in attempts[:2]] == [(1, 503), (2, 503)]
    assert all("sandbox scenario" in a["error"] for a in attempts)
    messages = (
        await http.get(f"/v1/webhook-endpoints/{endpoint}/messages", headers=keys.test_headers)
    ).json()["messages"]
    assert messages[0]["status"] == "pending" and messages[0]["last_status_code"] == 503
