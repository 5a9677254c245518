"""Export and erasure of one destination through the admin API: store rows, the search
API and Temporal's executions (real dev server, real worker, SQLite store)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import SQLModel
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from otp.settings import Secrets, Settings
from otp.store import Store
from otp.store.applications import ensure_default_application
from otp.store.events import destination_hash
from tests.helpers.api import Keys, read_messages, wrong_code
from tests.helpers.cli import free_port

ADMIN_TOKEN = "admin-token-for-the-erasure-tests-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ERASED, KEPT = "+14155550161", "+14155550162"
BASE = "/v1/admin/applications/default/destinations"


@pytest.fixture
def api_settings(api_settings: Settings) -> Settings:
    """The suite's settings with an admin token: the shared `http` and `worker` use them."""
    return api_settings.model_copy(update={"admin_token": SecretStr(ADMIN_TOKEN)})


@pytest.fixture(autouse=True)
async def default_application(store: Store) -> None:
    await ensure_default_application(store)


async def _start(http: httpx.AsyncClient, keys: Keys, to: str) -> str:
    response = await http.post(
        "/v1/verifications",
        json={"to": to, "client_ref": "ref-" + to[-2:]},
        headers=keys.test_headers,
    )
    assert response.status_code == 201, response.text
    vid: str = response.json()["id"]
    return vid


async def _events(http: httpx.AsyncClient, keys: Keys, vid: str, wanted: str) -> None:
    for _ in range(300):
        response = await http.get(f"/v1/verifications/{vid}/events", headers=keys.test_headers)
        if response.status_code == 200 and wanted in [e["type"] for e in response.json()["data"]]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{vid} never logged {wanted}")


async def _stored_text(store: Store) -> str:
    chunks = []
    async with store.engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            rows = (await conn.execute(table.select())).mappings().all()
            chunks.append(json.dumps([dict(r) for r in rows], default=str))
    return "\n".join(chunks)


async def _totals(http: httpx.AsyncClient, keys: Keys) -> dict[str, Any]:
    response = await http.get("/v1/analytics", headers=keys.test_headers)
    assert response.status_code == 200, response.text
    totals: dict[str, Any] = response.json()["totals"]
    return totals


async def _gone_from_temporal(env: WorkflowEnvironment, workflow_id: str) -> None:
    """Deletion is asynchronous on the server: describe answers NOT_FOUND, and visibility
    lists nothing, soon after (a running execution at once; a closed one once the
    server's history queues checkpoint past its close: about a second with the suite's
    dev server, half a minute with the server's defaults)."""
    for _ in range(1200):
        try:
            await env.client.get_workflow_handle(workflow_id).describe()
        except RPCError as exc:
            assert exc.status == RPCStatusCode.NOT_FOUND
            listed = [w async for w in env.client.list_workflows(f"WorkflowId = '{workflow_id}'")]
            if not listed:
                return
        await asyncio.sleep(0.1)
    try:
        described = await env.client.get_workflow_handle(workflow_id).describe()
        state = f"described {described.status} {described.run_id}"
    except RPCError as exc:
        state = f"describe {exc.status}; listed {listed}"
    raise AssertionError(f"{workflow_id} is still held by Temporal: {state}")


async def test_erasing_a_destination_leaves_nothing_reachable_and_keeps_the_counts(
    http: httpx.AsyncClient,
    keys: Keys,
    worker: None,
    store: Store,
    dev_env: WorkflowEnvironment,
    secrets: Secrets,
) -> None:
    # An endpoint that never answers: the webhook deliveries keep running (and retrying).
    endpoint = await http.post(
        "/v1/webhook-endpoints",
        json={"url": f"http://127.0.0.1:{free_port()}/hooks"},
        headers=keys.test_headers,
    )
    assert endpoint.status_code == 201, endpoint.text
    erased = [await _start(http, keys, ERASED) for _ in range(3)]
    kept = await _start(http, keys, KEPT)
    for vid in [*erased, kept]:
        await _events(http, keys, vid, "sent")
    # One finished (canceled), one with a wrong check (a failed-check counter), one running.
    cancel = await http.post(f"/v1/verifications/{erased[0]}/cancel", headers=keys.test_headers)
    assert cancel.status_code == 200, cancel.text
    await _events(http, keys, erased[0], "canceled")
    body = (await read_messages(http, keys, erased[1]))[0]["body"]
    wrong = await http.post(
        f"/v1/verifications/{erased[1]}/check",
        json={"code": wrong_code(body[-6:])},
        headers=keys.test_headers,
    )
    assert wrong.status_code == 200, wrong.text
    before = await _totals(http, keys)
    assert before["started"] == 4

    exported = await http.post(f"{BASE}/export", json={"to": ERASED}, headers=ADMIN)
    assert exported.status_code == 200, exported.text
    report = exported.json()
    assert sorted(report["verification_ids"]) == sorted(erased)
    assert report["to"] == "+1********61" and report["modes"] == ["live", "test"]
    assert report["tables"]["verifications"] == 3
    assert report["tables"]["sandbox_messages"] == 3
    assert report["tables"]["verification_events"] >= 9
    assert report["tables"]["counters"] == 1  # the failed check
    kinds = {e["workflow_id"]: e["kind"] for e in report["executions"]}
    deliveries = [w for w, kind in kinds.items() if kind == "webhook_delivery"]
    assert {w for w, kind in kinds.items() if kind == "verification"} == set(erased)
    assert len(deliveries) >= 3 and report["tables"]["webhook_messages"] == len(deliveries)
    assert {r["to"] for r in report["rows"]["sandbox_messages"]} == {ERASED}
    assert kept not in json.dumps(report)

    done = await http.post(f"{BASE}/erase", json={"to": ERASED, "mode": "test"}, headers=ADMIN)
    assert done.status_code == 200, done.text
    result = done.json()
    assert sorted(result["executions_deleted"]) == sorted([*erased, *deliveries])
    assert result["tables"]["verifications"] == 3  # anonymised, not deleted
    assert result["tables"]["verification_destinations"] == 3
    assert result["rows"] is None

    for workflow_id in deliveries:
        await _gone_from_temporal(dev_env, workflow_id)
    for vid in erased:
        await _gone_from_temporal(dev_env, vid)
        response = await http.get(f"/v1/verifications/{vid}", headers=keys.test_headers)
        assert response.status_code == 404, response.text
        events = await http.get(f"/v1/verifications/{vid}/events", headers=keys.test_headers)
        assert events.status_code == 404 or events.json()["data"] == [], events.text
    found = await http.get("/v1/verifications", params={"to": ERASED}, headers=keys.test_headers)
    assert found.status_code == 200 and found.json()["data"] == [], found.text
    inbox = await http.get("/v1/sandbox/messages", params={"to": ERASED}, headers=keys.test_headers)
    assert all(m["to"] != ERASED for m in inbox.json().get("messages", []))
    stored = await _stored_text(store)
    assert destination_hash(secrets.code_secret, ERASED) not in stored
    assert ERASED not in stored and "+1********61" not in stored and "ref-61" not in stored
    again = await http.post(f"{BASE}/export", json={"to": ERASED}, headers=ADMIN)
    assert again.json()["verification_ids"] == [] and again.json()["executions"] == []
    assert set(again.json()["tables"].values()) == {0}

    # The other number is untouched; the analytics count the same.
    state = await http.get(f"/v1/verifications/{kept}", headers=keys.test_headers)
    assert state.status_code == 200 and state.json()["to"] == "+1********62"
    other = await http.get("/v1/verifications", params={"to": KEPT}, headers=keys.test_headers)
    assert [v["id"] for v in other.json()["data"]] == [kept]
    assert len(await read_messages(http, keys, kept)) == 1
    after = await _totals(http, keys)
    assert after == before


async def test_bad_requests_are_problems_and_change_nothing(
    http: httpx.AsyncClient, keys: Keys, store: Store
) -> None:
    snapshot = await _stored_text(store)
    cases = [
        (f"{BASE}/erase", {"to": "not a number"}, 422),
        (f"{BASE}/erase", {"to": "+1415"}, 422),
        (f"{BASE}/erase", {"to": ERASED, "mode": "sideways"}, 422),
        (f"{BASE}/erase", {"to": ERASED, "extra": 1}, 422),
        (f"{BASE}/export", {}, 422),
        (
            "/v1/admin/applications/app_nosuchapplicationxxxxxxxxx/destinations/erase",
            {"to": ERASED},
            404,
        ),
        ("/v1/admin/applications/bad id/destinations/export", {"to": ERASED}, 404),
    ]
    for path, body, status in cases:
        response = await http.post(path, json=body, headers=ADMIN)
        assert response.status_code == status, (path, body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert ERASED not in response.text
    unauthorized = await http.post(f"{BASE}/erase", json={"to": ERASED})
    assert unauthorized.status_code == 401
    assert await _stored_text(store) == snapshot
