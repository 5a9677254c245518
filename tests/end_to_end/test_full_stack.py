"""One application's whole life through the HTTP API, on SQLite and on PostgreSQL.

Admin API → application and key → webhook endpoint → verification created twice with
one Idempotency-Key → wrong then right code → signed webhooks for the real events →
event log, search and analytics → key revoked. Real dev server, real worker, real
receiver; the store is the parametrised `any_store`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from otp.settings import Secrets, Settings
from otp.store import Store
from tests.conftest import real_worker
from tests.helpers.api import Keys, code_in, make_settings, wrong_code
from tests.helpers.webhook_receiver import Receiver, Reply, serve, spec_verify

ADMIN = {"Authorization": "Bearer full-stack-admin-token-0123456789"}
PHONE = "+14155550177"


@pytest.fixture
def stack_settings(data_dir: Path, task_queue: str, secrets: Secrets, keys: Keys) -> Settings:
    return make_settings(data_dir, task_queue, secrets, keys).model_copy(
        update={"admin_token": SecretStr(ADMIN["Authorization"].split()[1])}
    )


@pytest.fixture
async def http(
    stack_settings: Settings, dev_env: WorkflowEnvironment, any_store: Store
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(stack_settings, client=dev_env.client, store=any_store)
    async with (
        real_worker(dev_env.client, stack_settings, any_store),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api.test"
        ) as client,
    ):
        yield client


async def _inbox_code(http: httpx.AsyncClient, headers: dict[str, str], vid: str) -> str:
    for _ in range(300):
        response = await http.get(
            "/v1/sandbox/messages", params={"verification_id": vid}, headers=headers
        )
        messages = response.json()["messages"]
        if messages:
            return code_in(messages[0])
        await asyncio.sleep(0.05)
    raise AssertionError("no code in the sandbox inbox")


async def test_an_application_from_key_to_analytics(
    http: httpx.AsyncClient, any_store: Store
) -> None:
    app = await http.post(
        "/v1/admin/applications", json={"name": "Shop", "brand": "Shop"}, headers=ADMIN
    )
    assert app.status_code == 201, app.text
    app_id = app.json()["id"]
    key = await http.post(
        f"/v1/admin/applications/{app_id}/keys", json={"mode": "test"}, headers=ADMIN
    )
    assert key.status_code == 201, key.text
    raw_key, key_id = key.json()["key"], key.json()["id"]
    auth = {"Authorization": f"Bearer {raw_key}"}

    receiver = Receiver([Reply(200)])
    async with serve(receiver):
        endpoint = await http.post(
            "/v1/webhook-endpoints",
            json={
                "url": receiver.url,
                "event_types": ["verification.created", "verification.approved"],
            },
            headers=auth,
        )
        assert endpoint.status_code == 201, endpoint.text
        secret = endpoint.json()["secret"]

        body = {"to": PHONE, "client_ref": "order-9"}
        first = await http.post(
            "/v1/verifications", json=body, headers={**auth, "Idempotency-Key": "order-9-otp"}
        )
        again = await http.post(
            "/v1/verifications", json=body, headers={**auth, "Idempotency-Key": "order-9-otp"}
        )
        assert first.status_code == again.status_code == 201, (first.text, again.text)
        assert again.headers.get("Idempotent-Replayed") == "true"
        assert first.json() == again.json()
        vid = first.json()["id"]

        code = await _inbox_code(http, auth, vid)
        wrong = await http.post(
            f"/v1/verifications/{vid}/check", json={"code": wrong_code(code)}, headers=auth
        )
        assert wrong.json()["valid"] is False
        right = await http.post(f"/v1/verifications/{vid}/check", json={"code": code}, headers=auth)
        assert right.json()["status"] == "approved", right.text

        requests = await receiver.wait_for(2)
    payloads = [json.loads(r.body) for r in requests]
    assert sorted(p["type"] for p in payloads) == ["verification.approved", "verification.created"]
    for request, payload in zip(requests, payloads, strict=True):
        assert spec_verify(secret, request.headers, request.body)
        assert payload["data"]["id"] == vid and payload["data"]["to"] == "+1********77"
        assert code not in request.body.decode() and PHONE not in request.body.decode()
    approved = next(p for p in payloads if p["type"] == "verification.approved")
    assert approved["data"]["status"] == "approved"
    assert approved["data"]["client_ref"] == "order-9"

    events = await http.get(f"/v1/verifications/{vid}/events", headers=auth)
    types = [e["type"] for e in events.json()["data"]]
    assert types[0] == "created" and types[-1] in ("approved", "delivered")
    assert types.count("check_failed") == 1 and "approved" in types

    found = await http.get("/v1/verifications", params={"to": PHONE}, headers=auth)
    assert [v["id"] for v in found.json()["data"]] == [vid]
    report = await http.get("/v1/analytics", params={"group_by": "channel"}, headers=auth)
    assert report.json()["totals"]["started"] == 1
    assert report.json()["totals"]["approved"] == 1
    assert report.json()["totals"]["wrong_code_rate"] == 0.5

    revoked = await http.post(
        f"/v1/admin/applications/{app_id}/keys/{key_id}/revoke", headers=ADMIN
    )
    assert revoked.status_code == 200, revoked.text
    refused = await http.get(f"/v1/verifications/{vid}", headers=auth)
    assert refused.status_code == 401
