"""The safe list against the real stack: admin routes (audit trail, problems, auth), and
its effect: velocity limits and automatic (conversion) blocks skipped, geo policy and
manual blocks still applied."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from otp.risk.policy import Rate, RiskSettings
from otp.settings import Secrets, Settings
from otp.store import Store, risk_blocks
from otp.store.tables import SafeListEntry
from tests.helpers.api import Keys, application_with_key, bearer, make_settings, read_messages

ADMIN_TOKEN = "admin-token-for-the-safe-list-tests-01"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CREATE = "/v1/verifications"
STAFF = "+14155550190"
OTHER = "+14155550191"


@pytest.fixture
def api_settings(data_dir: Path, task_queue: str, secrets: Secrets, keys: Keys) -> Settings:
    return make_settings(data_dir, task_queue, secrets, keys).model_copy(
        update={"admin_token": SecretStr(ADMIN_TOKEN)}
    )


async def app_key(store: Store, risk: RiskSettings) -> tuple[str, str]:
    return await application_with_key(store, risk, name="Staff")


def problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"].endswith(slug), body
    return body


async def add(http: httpx.AsyncClient, app_id: str, to: str, **body: Any) -> dict[str, Any]:
    response = await http.post(
        f"/v1/admin/applications/{app_id}/safe-list",
        json={"to": to, "mode": "test", **body},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    entry: dict[str, Any] = response.json()
    return entry


async def test_add_list_remove_with_an_audit_trail(http: httpx.AsyncClient, store: Store) -> None:
    app_id, _key = await app_key(store, RiskSettings())
    url = f"/v1/admin/applications/{app_id}/safe-list"
    added = await http.post(
        url,
        json={"to": "+1 415 555 0190", "mode": "test", "note": " QA handset "},
        headers={**ADMIN, "X-Operator": "alice"},
    )
    assert added.status_code == 201, added.text
    entry = added.json()
    assert entry["id"].startswith("sfl_") and entry["to"] == "+1********90"
    assert entry["note"] == "QA handset" and entry["added_by"] == "alice"
    assert entry["active"] and entry["removed_at"] is None
    again = await add(http, app_id, STAFF, added_by="bob")  # already listed: the same entry
    assert again["id"] == entry["id"] and again["added_by"] == "alice"
    email = await add(http, app_id, "Staff@Example.com", added_by="bob")
    assert email["to"] == "S***@example.com" and email["added_by"] == "bob"

    async with store.session() as session:
        from sqlmodel import select

        rows = (await session.exec(select(SafeListEntry))).all()
    assert STAFF not in repr([r.model_dump() for r in rows])  # only hash and mask stored

    listed = await http.get(url, headers=ADMIN)
    assert [e["id"] for e in listed.json()["entries"]] == sorted([entry["id"], email["id"]])
    page = await http.get(url, params={"limit": 1}, headers=ADMIN)
    assert len(page.json()["entries"]) == 1 and page.json()["next_after"] is not None
    assert (await http.get(url, params={"mode": "live"}, headers=ADMIN)).json()["entries"] == []

    removed = await http.delete(f"{url}/{entry['id']}", headers={**ADMIN, "X-Operator": "carol"})
    assert removed.status_code == 200, removed.text
    assert removed.json()["removed_by"] == "carol" and not removed.json()["active"]
    assert [e["id"] for e in (await http.get(url, headers=ADMIN)).json()["entries"]] == [
        email["id"]
    ]
    audit = await http.get(url, params={"include_removed": "true"}, headers=ADMIN)
    trail = {e["id"]: e for e in audit.json()["entries"]}
    assert trail[entry["id"]]["added_by"] == "alice"
    assert trail[entry["id"]]["removed_by"] == "carol"
    assert trail[entry["id"]]["removed_at"] is not None
    repeat = await http.delete(f"{url}/{entry['id']}", headers=ADMIN)
    assert repeat.status_code == 200 and repeat.json()["removed_by"] == "carol"


async def test_safe_list_routes_refuse_bad_input_unknown_ids_and_no_token(
    http: httpx.AsyncClient, store: Store
) -> None:
    app_id, _key = await app_key(store, RiskSettings())
    url = f"/v1/admin/applications/{app_id}/safe-list"
    for body in (
        {"to": "not a number", "mode": "test"},
        {"to": STAFF},
        {"to": STAFF, "mode": "prod"},
        {"to": STAFF, "mode": "test", "note": "x" * 201},
        {"to": STAFF, "mode": "test", "extra": 1},
    ):
        problem(await http.post(url, json=body, headers=ADMIN), 422, "invalid-request")
    problem(await http.get(url, params={"limit": 0}, headers=ADMIN), 422, "invalid-request")
    assert (await http.get(url, params={"include_removed": "true"}, headers=ADMIN)).json()[
        "entries"
    ] == []  # nothing was added by the refused requests
    for entry_id in ("sfl_" + "a" * 24, "nope"):
        problem(
            await http.delete(f"{url}/{entry_id}", headers=ADMIN), 404, "safe-list-entry-not-found"
        )
    other = await add(http, app_id, STAFF)
    other_app, _ = await app_key(store, RiskSettings())
    problem(
        await http.delete(
            f"/v1/admin/applications/{other_app}/safe-list/{other['id']}", headers=ADMIN
        ),
        404,
        "safe-list-entry-not-found",
    )
    for method in ("GET", "POST"):
        response = await http.request(
            method,
            "/v1/admin/applications/app_nope/safe-list",
            json={"to": STAFF, "mode": "test"},
            headers=ADMIN,
        )
        problem(response, 404, "application-not-found")
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        problem(await http.get(url, headers=headers), 401, "admin-unauthorized")
        problem(
            await http.post(url, json={"to": STAFF, "mode": "test"}, headers=headers),
            401,
            "admin-unauthorized",
        )
        problem(
            await http.delete(f"{url}/{other['id']}", headers=headers), 401, "admin-unauthorized"
        )


@pytest.mark.usefixtures("worker")
async def test_a_safe_listed_number_passes_a_velocity_limit_that_refuses_another(
    http: httpx.AsyncClient, store: Store
) -> None:
    app_id, key = await app_key(
        store, RiskSettings(per_destination=Rate(limit=1, window_s=600), per_prefix=None)
    )
    await add(http, app_id, STAFF)
    for _ in range(3):
        allowed = await http.post(CREATE, json={"to": STAFF}, headers=bearer(key))
        assert allowed.status_code == 201, allowed.text
    first = await http.post(CREATE, json={"to": OTHER}, headers=bearer(key))
    assert first.status_code == 201, first.text
    refused = await http.post(CREATE, json={"to": OTHER}, headers=bearer(key))
    assert problem(refused, 429, "rate-limited")["limit"] == "destination"

    # Taken off the list, the staff number is limited like any other (its earlier
    # creates were not counted, so one more is allowed).
    listed = (await http.get(f"/v1/admin/applications/{app_id}/safe-list", headers=ADMIN)).json()[
        "entries"
    ]
    await http.delete(f"/v1/admin/applications/{app_id}/safe-list/{listed[0]['id']}", headers=ADMIN)
    assert (await http.post(CREATE, json={"to": STAFF}, headers=bearer(key))).status_code == 201
    again = await http.post(CREATE, json={"to": STAFF}, headers=bearer(key))
    assert problem(again, 429, "rate-limited")["limit"] == "destination"


async def test_a_safe_listed_number_still_obeys_the_geo_policy(
    http: httpx.AsyncClient, store: Store
) -> None:
    app_id, key = await app_key(store, RiskSettings(allowed_countries={"*": ["GB"]}))
    await add(http, app_id, STAFF)
    refused = await http.post(CREATE, json={"to": STAFF}, headers=bearer(key))
    assert problem(refused, 403, "risk-policy")["reason"] == "country_not_allowed"


@pytest.mark.usefixtures("worker")
async def test_a_safe_listed_number_skips_a_conversion_block_not_a_manual_one(
    http: httpx.AsyncClient, store: Store
) -> None:
    app_id, key = await app_key(store, RiskSettings())
    await risk_blocks.create_block(
        store,
        application_id=app_id,
        mode="test",
        scope="prefix",
        value="+1415555",
        reason="conversion monitoring: 0 of 20 approved",
        automatic=True,
        duration_s=3600,
    )
    await add(http, app_id, STAFF)
    created = await http.post(CREATE, json={"to": STAFF}, headers=bearer(key))
    assert created.status_code == 201, created.text
    # The worker's delivery gate lets it through too: the code reaches the sandbox.
    (message,) = await read_messages(http, Keys(key, key, key), created.json()["id"])
    assert message["to"] == STAFF
    other = await http.post(CREATE, json={"to": OTHER}, headers=bearer(key))
    assert problem(other, 403, "risk-policy")["reason"] == "scope_blocked"

    manual = await http.post(
        f"/v1/admin/applications/{app_id}/risk-blocks",
        json={"mode": "test", "scope": "country", "value": "US"},
        headers=ADMIN,
    )
    assert manual.status_code == 201, manual.text
    refused = await http.post(CREATE, json={"to": STAFF}, headers=bearer(key))
    assert problem(refused, 403, "risk-policy")["reason"] == "scope_blocked"
