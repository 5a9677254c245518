"""The event log, search, analytics and reads past Temporal's retention, through the HTTP API
(real dev server, real worker, SQLite store)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from google.protobuf.duration_pb2 import Duration
from sqlalchemy import text
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from otp.settings import Settings
from otp.store import Store
from tests.helpers.api import Keys, read_code, wrong_code

PHONE = "+14155550142"


async def _create(http: httpx.AsyncClient, keys: Keys, **body: Any) -> str:
    response = await http.post(
        "/v1/verifications", json={"to": PHONE, **body}, headers=keys.test_headers
    )
    assert response.status_code == 201, response.text
    vid: str = response.json()["id"]
    return vid


async def _final_events(http: httpx.AsyncClient, keys: Keys, vid: str, last: str) -> list[str]:
    """Event types once the terminal one is logged (the workflow's batch has landed)."""
    for _ in range(200):
        response = await http.get(f"/v1/verifications/{vid}/events", headers=keys.test_headers)
        if response.status_code == 200:
            types = [e["type"] for e in response.json()["data"]]
            if last in types:
                return types
        await asyncio.sleep(0.05)
    raise AssertionError(f"{last} never logged for {vid}")


async def _store_text(store: Store) -> str:
    """Every row of every table as text: what an attacker with the database would read."""
    chunks = []
    async with store.engine.connect() as conn:
        names = [
            r[0]
            for r in (
                await conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))
            ).all()
        ]
        for name in names:
            rows = (await conn.execute(text(f'SELECT * FROM "{name}"'))).all()
            chunks.append(repr(rows))
    return "\n".join(chunks)


async def test_a_verification_leaves_a_complete_log_without_its_code(
    http: httpx.AsyncClient, keys: Keys, worker: None, store: Store
) -> None:
    vid = await _create(http, keys, client_ref="user-42")
    code = await read_code(http, keys, vid)
    wrong = await http.post(
        f"/v1/verifications/{vid}/check", json={"code": wrong_code(code)}, headers=keys.test_headers
    )
    assert wrong.json()["valid"] is False
    right = await http.post(
        f"/v1/verifications/{vid}/check", json={"code": code}, headers=keys.test_headers
    )
    assert right.json()["status"] == "approved"

    types = await _final_events(http, keys, vid, "approved")
    assert types[0] == "created"
    for expected in ("send_attempted", "sent", "check_failed", "approved"):
        assert types.count(expected) == 1, types
    response = await http.get(f"/v1/verifications/{vid}/events", headers=keys.test_headers)
    events = response.json()["data"]
    send = next(e for e in events if e["type"] == "sent")
    assert send["channel"] == "sms" and send["provider"] == "sandbox"
    assert send["to"] == "+1********42" and send["country"] == "US"

    # The code is nowhere in the store but the sandbox inbox (the simulated phone).
    dump = await _store_text(store)
    assert dump.count(code) == dump.count(f"code is {code}") >= 1
    assert "4155550142" not in dump.replace(PHONE, "")  # in clear only in the sandbox's "to"

    found = await http.get(
        "/v1/verifications",
        params={"to": PHONE, "status": "approved", "client_ref": "user-42"},
        headers=keys.test_headers,
    )
    assert found.status_code == 200, found.text
    [summary] = found.json()["data"]
    assert summary["id"] == vid and summary["attempts_used"] == 2
    assert summary["time_to_verify_ms"] is not None


async def test_search_pages_and_scopes_by_mode(
    http: httpx.AsyncClient, keys: Keys, worker: None
) -> None:
    ids = [await _create(http, keys, client_ref="paging") for _ in range(3)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"client_ref": "paging", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (
            await http.get("/v1/verifications", params=params, headers=keys.test_headers)
        ).json()
        seen += [v["id"] for v in page["data"]]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    assert seen == list(reversed(ids))
    live = await http.get(
        "/v1/verifications", params={"client_ref": "paging"}, headers=keys.live_headers
    )
    assert live.json()["data"] == []
    for bad in ({"cursor": "zzz"}, {"to": "not-a-number"}, {"limit": 0}, {"country": "USA"}):
        response = await http.get("/v1/verifications", params=bad, headers=keys.test_headers)
        assert response.status_code == 422, (bad, response.text)
        assert response.headers["content-type"] == "application/problem+json"


async def test_an_undeliverable_verification_logs_each_failure(
    http: httpx.AsyncClient, keys: Keys, worker: None
) -> None:
    vid = await _create(http, keys, to="+15005550001")  # the sandbox's invalid number
    types = await _final_events(http, keys, vid, "undeliverable")
    assert "failed" in types and types[0] == "created"


async def test_finished_verifications_outlive_temporal_retention(
    http: httpx.AsyncClient,
    keys: Keys,
    worker: None,
    dev_env: WorkflowEnvironment,
    api_settings: Settings,
    store: Store,
) -> None:
    vid = await _create(http, keys)
    code = await read_code(http, keys, vid)
    await http.post(
        f"/v1/verifications/{vid}/check", json={"code": code}, headers=keys.test_headers
    )
    await _final_events(http, keys, vid, "approved")
    # The same store, seen by an API whose Temporal namespace never held the execution:
    # what every API sees once the namespace's retention has removed it.
    forgetful = await _client_of_empty_namespace(dev_env)
    app = create_app(api_settings, client=forgetful, store=store)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api.test"
    ) as later:
        read = await later.get(f"/v1/verifications/{vid}", headers=keys.test_headers)
        assert read.status_code == 200, read.text
        body = read.json()
        assert body["status"] == "approved" and body["to"] == "+1********42"
        assert body["deliveries"] and body["attempts_used"] == 1
        again = await later.post(
            f"/v1/verifications/{vid}/check", json={"code": code}, headers=keys.test_headers
        )
        assert again.status_code == 409, again.text
        assert again.json()["status_of_verification"] == "approved"
        assert again.json()["reason"]
        # Another mode's key still sees nothing; an id the store never had is 404.
        other = await later.get(f"/v1/verifications/{vid}", headers=keys.live_headers)
        assert other.status_code == 404
        unknown = await later.get(f"/v1/verifications/ver_{'z' * 26}", headers=keys.test_headers)
        assert unknown.status_code == 404


async def _client_of_empty_namespace(env: WorkflowEnvironment) -> Client:
    name = "otp-forgotten"
    try:
        await env.client.workflow_service.register_namespace(
            RegisterNamespaceRequest(
                namespace=name,
                workflow_execution_retention_period=Duration(seconds=86_400),
            )
        )
    except RPCError as err:
        if err.status != RPCStatusCode.ALREADY_EXISTS:
            raise
    config = env.client.config()
    config["namespace"] = name
    return Client(**config)


async def test_analytics_counts_what_happened(
    http: httpx.AsyncClient, keys: Keys, worker: None
) -> None:
    approved = await _create(http, keys)
    code = await read_code(http, keys, approved)
    await http.post(
        f"/v1/verifications/{approved}/check", json={"code": code}, headers=keys.test_headers
    )
    canceled = await _create(http, keys)
    await http.post(f"/v1/verifications/{canceled}/cancel", headers=keys.test_headers)
    await _final_events(http, keys, approved, "approved")
    await _final_events(http, keys, canceled, "canceled")
    report = await http.get(
        "/v1/analytics", params={"group_by": "channel,country"}, headers=keys.test_headers
    )
    assert report.status_code == 200, report.text
    totals = report.json()["totals"]
    assert totals["started"] >= 2 and totals["approved"] >= 1 and totals["canceled"] >= 1
    assert 0 < totals["conversion_rate"] < 1
    group = report.json()["groups"][0]
    assert {"channel", "country", "started"} <= set(group)
    bad = await http.get(
        "/v1/analytics",
        params={"created_after": "2026-01-02T00:00:00Z", "created_before": "2026-01-01T00:00:00Z"},
        headers=keys.test_headers,
    )
    assert bad.status_code == 422
