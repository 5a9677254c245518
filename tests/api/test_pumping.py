"""SMS pumping against the real stack: conversion monitoring blocks the number range.

A scripted burst to one range (`+1415555XXXX`, distinct numbers, sandbox test key, no
code ever entered) is started one verification after another, each waiting for its
send or its refusal, so the count is exact. With a minimum volume of 5 the first 5 are
sent; the 6th finds 5 judged verifications with none approved, blocks the prefix and is
refused before any provider call, as is every later one. Lifting the block lets traffic
through; the next automatic block of the range lasts longer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from otp.risk.conversion_monitor import ConversionSettings
from otp.settings import Secrets, Settings
from otp.store import Store
from otp.store import records as store_records
from tests.conftest import TEST_SECRETS
from tests.helpers.api import Keys, code_in, make_settings

ADMIN_TOKEN = "admin-token-for-the-pumping-tests-0123"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
MIN_VOLUME = 5
CONVERSION = ConversionSettings(
    min_volume=MIN_VOLUME,
    grace_s=0,  # the test waits for each send: every earlier verification had its chance
    threshold=0.2,
    country_min_volume=1_000,  # only the prefix is judged here
)


@pytest.fixture
def api_settings(data_dir: Path, task_queue: str, secrets: Secrets, keys: Keys) -> Settings:
    return make_settings(data_dir, task_queue, secrets, keys).model_copy(
        update={"admin_token": SecretStr(ADMIN_TOKEN)}
    )


@pytest.fixture
async def pumping_worker(
    dev_env: WorkflowEnvironment, api_settings: Settings, store: Store
) -> AsyncIterator[None]:
    """The production worker, with conversion monitoring at small test volumes."""
    from activities.wiring import WorkflowReceiptSink, build_activities, build_worker

    activities = build_activities(
        api_settings,
        TEST_SECRETS,
        store,
        receipts=WorkflowReceiptSink(dev_env.client, delay_s=0.05),
        client=dev_env.client,
        conversion=CONVERSION,
    )
    async with build_worker(dev_env.client, api_settings, activities):
        yield
    await activities.verification.drain_logs()


async def new_app_key(http: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    app = await http.post("/v1/admin/applications", json={"name": "Pumped"}, headers=ADMIN)
    assert app.status_code == 201, app.text
    app_id: str = app.json()["id"]
    key = await http.post(
        f"/v1/admin/applications/{app_id}/keys", json={"mode": "test"}, headers=ADMIN
    )
    assert key.status_code == 201, key.text
    return app_id, {"Authorization": f"Bearer {key.json()['key']}"}


async def poll(
    http: httpx.AsyncClient, url: str, headers: dict[str, str], done: Any, what: str
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        response = await http.get(url, headers=headers)
        body: dict[str, Any] = response.json()
        if response.status_code == 200 and done(body):
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {body}")
        await asyncio.sleep(0.05)


def _settled(body: dict[str, Any]) -> bool:
    """Blocked, or its first send went out."""
    return body["status"] == "blocked" or any(
        d["status"] in ("sent", "delivered") for d in body["deliveries"]
    )


async def start_and_settle(
    http: httpx.AsyncClient, headers: dict[str, str], number: str
) -> dict[str, Any]:
    created = await http.post("/v1/verifications", json={"to": number}, headers=headers)
    assert created.status_code == 201, created.text
    vid = created.json()["id"]
    return await poll(http, f"/v1/verifications/{vid}", headers, _settled, f"{vid} to settle")


async def messages(store: Store, app_id: str) -> int:
    return len(await store.list_sandbox_messages(application_id=app_id, limit=1_000))


async def blocks(http: httpx.AsyncClient, app_id: str) -> list[dict[str, Any]]:
    response = await http.get(
        f"/v1/admin/applications/{app_id}/risk-blocks", params={"mode": "test"}, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["blocks"]
    return found


def _duration(block: dict[str, Any]) -> timedelta:
    return datetime.fromisoformat(block["expires_at"]) - datetime.fromisoformat(block["created_at"])


async def test_a_pumping_burst_is_blocked_after_min_volume(
    http: httpx.AsyncClient, pumping_worker: None, store: Store
) -> None:
    app_id, headers = await new_app_key(http)
    burst = [
        await start_and_settle(http, headers, f"+1415555{2000 + i}") for i in range(MIN_VOLUME + 1)
    ]

    sent, refused = burst[:MIN_VOLUME], burst[MIN_VOLUME:]
    assert [v["status"] for v in sent] == ["pending"] * MIN_VOLUME
    # The send that tips the range over is refused by the delivery gate, which blocks it.
    assert [v["status"] for v in refused] == ["blocked"]
    # From then on creates to the range are refused: by the API before any workflow starts
    # (403) once it has seen the block, which takes up to a few seconds after an
    # automatic one; until then by the delivery gate (the verification ends blocked).
    for i in range(3):
        later = await http.post(
            "/v1/verifications", json={"to": f"+1415555{2100 + i}"}, headers=headers
        )
        assert later.status_code in (201, 403), later.text
        assert "+1415555" not in later.text
        if later.status_code == 403:
            assert later.json()["reason"] == "scope_blocked"
        else:
            ended = await poll(
                http,
                f"/v1/verifications/{later.json()['id']}",
                headers,
                lambda body: body["status"] != "pending",
                "the blocked verification",
            )
            assert ended["status"] == "blocked"
    # Exactly min_volume codes reached a (sandbox) phone; none after the block.
    assert await messages(store, app_id) == MIN_VOLUME

    [block] = await blocks(http, app_id)
    assert block["automatic"] and block["active"] and block["level"] == 1
    # Only a short range is shown (the range itself is matched by its keyed hash).
    assert (block["scope"], block["value"], block["mode"]) == ("prefix", "+1415", "test")
    assert "value_hash" not in block
    assert _duration(block) == timedelta(hours=1)
    assert "0 of 5 verifications to this prefix approved (0 %)" in block["reason"]

    for verification in refused:
        vid = verification["id"]
        assert verification["reason"].startswith(f"risk block {block['id']} on prefix +1415:")
        assert [d["error_type"] for d in verification["deliveries"]] == ["Blocked"]
        assert verification["sends"] == 1 and not verification["to"].startswith("+1415555")
        events = await poll(
            http,
            f"/v1/verifications/{vid}/events",
            headers,
            lambda body: any(e["type"] == "blocked" for e in body["data"]),
            f"{vid}'s blocked event",
        )
        terminal = next(e for e in events["data"] if e["type"] == "blocked")
        assert terminal["reason"] == verification["reason"]
        assert "sent" not in [e["type"] for e in events["data"]]

    # Lifting lets the range through again: the evidence before it was spent on the block.
    lifted = await http.post(
        f"/v1/admin/applications/{app_id}/risk-blocks/{block['id']}/lift",
        json={"lifted_by": "ops@example.com"},
        headers=ADMIN,
    )
    assert lifted.status_code == 200, lifted.text
    assert not lifted.json()["active"] and lifted.json()["lifted_by"] == "ops@example.com"

    real_user = await start_and_settle(http, headers, "+14155552999")
    assert real_user["status"] == "pending"
    (message,) = await store.list_sandbox_messages(
        application_id=app_id, verification_id=real_user["id"]
    )
    check = await http.post(
        f"/v1/verifications/{real_user['id']}/check",
        json={"code": code_in({"body": message.body})},
        headers=headers,
    )
    assert check.status_code == 200 and check.json()["status"] == "approved", check.text

    async def approved_recorded() -> None:
        for _ in range(200):
            record = await store_records.get_record(
                store, verification_id=real_user["id"], application_id=app_id, mode="test"
            )
            if record is not None and record.final:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the approval was not recorded")

    await approved_recorded()
    # 1 approved of 5 is 20 %, not below the threshold: still sent; 1 of 6 is below it.
    again = [await start_and_settle(http, headers, f"+1415555{3000 + i}") for i in range(6)]
    assert [v["status"] for v in again] == ["pending"] * 5 + ["blocked"]
    assert await messages(store, app_id) == MIN_VOLUME + 1 + 5

    second, first = await blocks(http, app_id)  # newest first; the lifted one is recent
    assert first["id"] == block["id"] and not first["active"]
    assert second["active"] and second["automatic"] and second["level"] == 2
    assert _duration(second) == timedelta(hours=6)  # escalated


async def test_manual_blocks_through_the_admin_api(
    http: httpx.AsyncClient, pumping_worker: None, store: Store
) -> None:
    app_id, headers = await new_app_key(http)
    url = f"/v1/admin/applications/{app_id}/risk-blocks"
    # Started before the block: its next send meets the block in the delivery gate.
    running = await http.post(
        "/v1/verifications",
        json={"to": "+12125550199", "channels": [{"channel": "sms"}, {"channel": "voice"}]},
        headers=headers,
    )
    assert running.status_code == 201, running.text
    running_id = running.json()["id"]
    await poll(
        http,
        f"/v1/verifications/{running_id}",
        headers,
        lambda body: bool(body["deliveries"]) and body["deliveries"][0]["status"] != "sending",
        "the first send",
    )
    created = await http.post(
        url,
        json={"mode": "test", "scope": "country", "value": "us", "reason": "fraud wave"},
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    block = created.json()
    assert (block["value"], block["automatic"], block["expires_at"]) == ("US", False, None)

    refused = await http.post("/v1/verifications", json={"to": "+12125550123"}, headers=headers)
    assert refused.status_code == 403, refused.text
    assert refused.json()["reason"] == "scope_blocked"
    moved = await http.post(f"/v1/verifications/{running_id}/next-channel", headers=headers)
    assert moved.status_code in (200, 409), moved.text
    ended = await poll(
        http,
        f"/v1/verifications/{running_id}",
        headers,
        lambda body: body["status"] != "pending",
        "the blocked fallback",
    )
    assert ended["status"] == "blocked"
    assert ended["reason"] == f"risk block {block['id']} on country US: fraud wave"
    # Email is not a phone scope: it goes out.
    email = await start_and_settle(http, headers, "jane@example.com")
    assert email["status"] == "pending"
    assert await messages(store, app_id) == 2  # the running one's sms, and the email

    lift = await http.post(f"{url}/{block['id']}/lift", headers=ADMIN)
    assert lift.status_code == 200 and lift.json()["lifted_by"] == "admin"
    through = await start_and_settle(http, headers, "+12125550124")
    assert through["status"] == "pending"
    listed = await blocks(http, app_id)
    assert [b["id"] for b in listed] == [block["id"]] and not listed[0]["active"]
    active_only = await http.get(url, params={"recent_days": 0}, headers=ADMIN)
    assert active_only.json()["blocks"] == []


async def test_admin_risk_block_refusals(http: httpx.AsyncClient, store: Store) -> None:
    app_id, _ = await new_app_key(http)
    url = f"/v1/admin/applications/{app_id}/risk-blocks"
    no_token = await http.get(url)
    assert no_token.status_code == 401
    unknown_app = await http.get("/v1/admin/applications/app_nope/risk-blocks", headers=ADMIN)
    assert unknown_app.status_code == 404
    assert unknown_app.json()["type"] == "urn:otp:problem:application-not-found"
    for body in (
        {"mode": "test", "scope": "country", "value": "USA"},
        {"mode": "test", "scope": "prefix", "value": "1415555"},
        {"mode": "test", "scope": "region", "value": "US"},
        {"mode": "test", "scope": "country", "value": "US", "duration_s": 5},
        {"mode": "test", "scope": "country", "value": "US", "extra": 1},
    ):
        response = await http.post(url, json=body, headers=ADMIN)
        assert response.status_code == 422, (body, response.text)
    for block_id in ("blk_" + "a" * 24, "not-a-block"):
        missing = await http.post(f"{url}/{block_id}/lift", headers=ADMIN)
        assert missing.status_code == 404
        assert missing.json()["type"] == "urn:otp:problem:risk-block-not-found"
    # Another application's block is not found through this one.
    other_id, _ = await new_app_key(http)
    other = await http.post(
        f"/v1/admin/applications/{other_id}/risk-blocks",
        json={"mode": "live", "scope": "prefix", "value": "+4477009", "duration_s": 3600},
        headers=ADMIN,
    )
    assert other.status_code == 201, other.text
    crossed = await http.post(f"{url}/{other.json()['id']}/lift", headers=ADMIN)
    assert crossed.status_code == 404
    assert (await http.get(url, headers=ADMIN)).json()["blocks"] == []
