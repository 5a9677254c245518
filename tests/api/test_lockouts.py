"""Lockouts after too many wrong codes, against the real stack: the lockout is listed
(masked), emitted as a `destination.locked` webhook, lifted by an operator (after which
the right code approves again) and ends on its own after `lockout_duration_s`."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from api.services.lockouts import unlock
from otp.domain import Mode
from otp.risk.policy import Rate, RiskSettings, failed_checks_key, note_check
from otp.settings import Secrets, Settings
from otp.store import Store
from otp.store import lockouts as store_lockouts
from otp.store.events import destination_hash
from otp.store.tables import utcnow
from tests.conftest import TEST_SECRETS
from tests.helpers.api import (
    Keys,
    application_with_key,
    bearer,
    code_in,
    make_settings,
    read_messages,
    wrong_code,
)
from tests.helpers.webhook_receiver import Receiver, Reply, serve, spec_verify

ADMIN_TOKEN = "admin-token-for-the-lockout-tests-0123"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CREATE = "/v1/verifications"
TO = "+14155550188"


@pytest.fixture
def api_settings(data_dir: Path, task_queue: str, secrets: Secrets, keys: Keys) -> Settings:
    return make_settings(data_dir, task_queue, secrets, keys).model_copy(
        update={"admin_token": SecretStr(ADMIN_TOKEN)}
    )


async def app_key(store: Store, risk: RiskSettings) -> tuple[str, str]:
    return await application_with_key(store, risk, name="Locked")


async def start(http: httpx.AsyncClient, key: str, to: str = TO) -> tuple[str, str]:
    response = await http.post(CREATE, json={"to": to}, headers=bearer(key))
    assert response.status_code == 201, response.text
    verification_id = response.json()["id"]
    messages = await read_messages(http, Keys(key, key, key), verification_id)
    return verification_id, code_in(messages[0])


async def check(
    http: httpx.AsyncClient, key: str, verification_id: str, code: str
) -> httpx.Response:
    return await http.post(
        f"{CREATE}/{verification_id}/check", json={"code": code}, headers=bearer(key)
    )


def problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"].endswith(slug), body
    return body


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.usefixtures("worker")
async def test_lockout_is_listed_webhooked_lifted_and_the_right_code_then_approves(
    http: httpx.AsyncClient, store: Store
) -> None:
    app_id, key = await app_key(
        store,
        RiskSettings(
            max_failed_checks=3,
            lockout_duration_s=3600,
            per_destination=Rate(limit=100, window_s=600),
        ),
    )
    receiver = Receiver([Reply(200)])
    async with serve(receiver):
        endpoint = await http.post(
            "/v1/webhook-endpoints",
            json={"url": receiver.url, "event_types": ["destination.locked"]},
            headers=bearer(key),
        )
        assert endpoint.status_code == 201, endpoint.text
        first, code = await start(http, key)
        for _ in range(3):
            answer = await check(http, key, first, wrong_code(code))
            assert answer.status_code == 200 and answer.json()["valid"] is False
        refused = await check(http, key, first, code)  # locked: even the right code
        assert problem(refused, 403, "risk-policy")["reason"] == "failed_checks_exceeded"
        (request,) = await receiver.wait_for(1)

    assert spec_verify(endpoint.json()["secret"], request.headers, request.body)
    assert TO.encode() not in request.body
    payload = json.loads(request.body)
    assert payload["type"] == "destination.locked"
    data = payload["data"]
    assert data["to"] == "+1********88" and data["channel"] == "sms"
    assert data["failed_count"] == 3 and data["id"] == first and data["mode"] == "test"
    assert at(data["until"]) - at(data["since"]) == timedelta(hours=1)

    listed = await http.get(f"/v1/admin/applications/{app_id}/lockouts", headers=ADMIN)
    assert listed.status_code == 200, listed.text
    (lockout,) = listed.json()["lockouts"]
    assert lockout["to"] == "+1********88" and lockout["failed_count"] == 3
    assert lockout["mode"] == "test" and lockout["id"] == data["lockout_id"]
    assert listed.json()["next_after"] is None
    live_only = await http.get(
        f"/v1/admin/applications/{app_id}/lockouts", params={"mode": "live"}, headers=ADMIN
    )
    assert live_only.json()["lockouts"] == []
    blocked = await http.post(CREATE, json={"to": TO}, headers=bearer(key))
    assert problem(blocked, 403, "risk-policy")["reason"] == "failed_checks_exceeded"

    unlocked = await http.post(
        f"/v1/admin/applications/{app_id}/lockouts/unlock",
        json={"to": "+1 415 555 0188"},
        headers={**ADMIN, "X-Operator": "alice"},
    )
    assert unlocked.status_code == 200, unlocked.text
    assert unlocked.json()["to"] == "+1********88"
    assert [item["id"] for item in unlocked.json()["lifted"]] == [lockout["id"]]
    after = await http.get(f"/v1/admin/applications/{app_id}/lockouts", headers=ADMIN)
    assert after.json()["lockouts"] == []
    lifted = await store_lockouts.list_active_lockouts(
        store, application_id=app_id, now=utcnow() - timedelta(days=1)
    )
    assert lifted == []  # a lifted row is not in force at any time
    again = await http.post(
        f"/v1/admin/applications/{app_id}/lockouts/unlock", json={"to": TO}, headers=ADMIN
    )
    problem(again, 404, "lockout-not-found")

    second, code = await start(http, key)  # a new verification, and the right code
    approved = await check(http, key, second, code)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"


async def test_lockout_routes_refuse_bad_input_and_unknown_applications(
    http: httpx.AsyncClient, store: Store
) -> None:
    app_id, _key = await app_key(store, RiskSettings())
    base = f"/v1/admin/applications/{app_id}/lockouts"
    for body in ({"to": "not a number"}, {"to": "+1"}, {}, {"to": TO, "mode": "prod"}):
        problem(await http.post(f"{base}/unlock", json=body, headers=ADMIN), 422, "invalid-request")
    problem(await http.get(base, params={"limit": 0}, headers=ADMIN), 422, "invalid-request")
    problem(await http.get(base, params={"mode": "x"}, headers=ADMIN), 422, "invalid-request")
    problem(
        await http.post(f"{base}/unlock", json={"to": TO}, headers=ADMIN), 404, "lockout-not-found"
    )
    for method, url in (
        ("GET", "/v1/admin/applications/app_nope/lockouts"),
        ("POST", "/v1/admin/applications/app_nope/lockouts/unlock"),
    ):
        response = await http.request(method, url, json={"to": TO}, headers=ADMIN)
        problem(response, 404, "application-not-found")
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        problem(await http.get(base, headers=headers), 401, "admin-unauthorized")
        unauth = await http.post(f"{base}/unlock", json={"to": TO}, headers=headers)
        problem(unauth, 401, "admin-unauthorized")


async def test_a_lockout_ends_on_its_own_after_the_lockout_duration(store: Store) -> None:
    """The counter at the cap gets `lockout_duration_s` as its expiry (store limiter with
    a controlled clock), not the 30 days a count below the cap is kept."""
    from otp.risk.limits.store import StoreLimiter

    now = [1_000_000.0]
    limiter = StoreLimiter(store, clock=lambda: now[0])
    risk = RiskSettings(max_failed_checks=2, lockout_duration_s=600)
    keys = [failed_checks_key("app_x", Mode.TEST, destination_hash(TEST_SECRETS.code_secret, TO))]
    assert await note_check(limiter, keys, approved=False, risk=risk) == []
    assert await note_check(limiter, keys, approved=False, risk=risk) == [(keys[0], 2)]
    assert await limiter.get(keys[0]) >= 2
    now[0] += 599
    assert await limiter.get(keys[0]) >= 2  # still locked
    now[0] += 2
    assert await limiter.get(keys[0]) == 0  # ended on its own


async def test_unlock_works_when_the_lockout_row_was_never_written(store: Store) -> None:
    """The counter refuses on its own; an unlock resets it even without a row."""
    from otp.risk.limits.store import StoreLimiter

    limiter = StoreLimiter(store)
    risk = RiskSettings(max_failed_checks=1)
    dst = destination_hash(TEST_SECRETS.code_secret, TO)
    keys = [failed_checks_key("app_y", Mode.LIVE, dst)]
    assert await note_check(limiter, keys, approved=False, risk=risk) == [(keys[0], 1)]
    lifted = await unlock(
        store,
        limiter,
        risk,
        application_id="app_y",
        destination_hash=dst,
        modes=[Mode.TEST, Mode.LIVE],
        lifted_by="t",
    )
    assert [(item.mode, item.lockout) for item in lifted] == [(Mode.LIVE, None)]
    assert await limiter.get(keys[0]) == 0


async def test_purge_expired_lockouts(store: Store) -> None:
    now = utcnow()
    kept = await store_lockouts.record_lockout(
        store,
        application_id="app_p",
        mode="test",
        destination_hash="a" * 64,
        to_masked="+1********88",
        channel="sms",
        failed_count=3,
        duration_s=3600,
        now=now,
    )
    await store_lockouts.record_lockout(
        store,
        application_id="app_p",
        mode="test",
        destination_hash="b" * 64,
        to_masked="+1********89",
        channel="sms",
        failed_count=3,
        duration_s=3600,
        now=now - timedelta(days=10),
    )
    assert await store_lockouts.purge_expired_lockouts(store, older_than=timedelta(days=7)) == 1
    remaining = await store_lockouts.list_active_lockouts(store, application_id="app_p")
    assert [r.id for r in remaining] == [kept.id]
