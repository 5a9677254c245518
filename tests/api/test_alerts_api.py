"""Alert rules and alerts through the admin API: defaults, replace, bad rules refused with
nothing changed, list and read alerts, 404s."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from otp.settings import Secrets, Settings
from otp.store import Store
from otp.store import alerts as db
from otp.store.applications import create_application
from tests.api.test_templates import problem
from tests.helpers.api import Keys, make_settings

ADMIN_TOKEN = "admin-token-for-the-alert-tests-0123456"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def api_settings(data_dir: Path, task_queue: str, secrets: Secrets, keys: Keys) -> Settings:
    return make_settings(data_dir, task_queue, secrets, keys).model_copy(
        update={"admin_token": SecretStr(ADMIN_TOKEN)}
    )


async def test_rules_default_replace_and_refuse(http: httpx.AsyncClient, store: Store) -> None:
    app = await create_application(store, name="Watched")
    url = f"/v1/admin/applications/{app.id}/alert-rules"
    defaults = (await http.get(url, headers=ADMIN)).json()
    assert defaults["conversion"]["threshold"] == 0.5 and defaults["email_to"] == []
    assert defaults["spend"]["levels"] == [80, 100]

    changed = await http.put(
        url,
        json={"conversion": {"threshold": 0.6, "min_volume": 50}, "email_to": ["Ops@Acme.test"]},
        headers=ADMIN,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["conversion"]["min_volume"] == 50
    assert changed.json()["email_to"] == ["ops@acme.test"]

    for bad in (
        {"conversion": {"threshold": 2}},
        {"spend": {"levels": [0]}},
        {"email_to": ["not an address"]},
        {"nonsense": True},
    ):
        refused = problem(await http.put(url, json=bad, headers=ADMIN), 422, "invalid-request")
        assert refused["errors"], bad
    kept = (await http.get(url, headers=ADMIN)).json()
    assert kept["conversion"]["threshold"] == 0.6 and kept["email_to"] == ["ops@acme.test"]
    problem(
        await http.get("/v1/admin/applications/app_missing/alert-rules", headers=ADMIN),
        404,
        "application-not-found",
    )
    assert (await http.get(url)).status_code == 401


async def test_alerts_are_listed_and_read(http: httpx.AsyncClient, store: Store) -> None:
    app = await create_application(store, name="Alerted")
    now = datetime.now(UTC)
    row = await db.open_alert(
        store,
        application_id=app.id,
        mode="live",
        rule="conversion",
        scope="all",
        evidence={"started": 40, "approved": 8, "rate": 0.2},
        now=now,
    )
    assert row is not None
    base = f"/v1/admin/applications/{app.id}/alerts"
    listed = (await http.get(base, params={"state": "firing"}, headers=ADMIN)).json()["alerts"]
    assert [(a["id"], a["rule"], a["evidence"]["approved"]) for a in listed] == [
        (row.id, "conversion", 8)
    ]
    assert (await http.get(base, params={"state": "resolved"}, headers=ADMIN)).json()[
        "alerts"
    ] == []
    one = await http.get(f"{base}/{row.id}", headers=ADMIN)
    assert one.status_code == 200 and one.json()["state"] == "firing"
    problem(await http.get(f"{base}/alr_unknown", headers=ADMIN), 404, "alert-not-found")
    problem(
        await http.get(base, params={"state": "sleeping"}, headers=ADMIN), 422, "invalid-request"
    )
