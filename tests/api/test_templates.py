"""Message templates through the admin API, against the real stack: save (versions),
validation problems that change nothing, preview, fallback, delete, and a delivery that
uses the active template and records its version."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from otp.applications.model import ApplicationDefaults
from otp.domain import Mode
from otp.settings import Secrets, Settings
from otp.store import Store
from otp.store.applications import create_api_key, create_application
from tests.helpers.api import Keys, bearer, make_settings, read_messages

ADMIN_TOKEN = "admin-token-for-the-template-tests-0123"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def api_settings(data_dir: Path, task_queue: str, secrets: Secrets, keys: Keys) -> Settings:
    return make_settings(data_dir, task_queue, secrets, keys).model_copy(
        update={"admin_token": SecretStr(ADMIN_TOKEN)}
    )


def base(app_id: str) -> str:
    return f"/v1/admin/applications/{app_id}/templates"


def problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"].endswith(slug), body
    return body


async def new_app(store: Store) -> tuple[str, str]:
    app = await create_application(
        store, name="Templated", brand="Acme", defaults=ApplicationDefaults(locale="de")
    )
    key = await create_api_key(store, application_id=app.id, mode=Mode.TEST)
    return app.id, key.key


async def test_save_version_list_preview_and_delete(http: httpx.AsyncClient, store: Store) -> None:
    app_id, _ = await new_app(store)
    first = await http.put(
        f"{base(app_id)}/sms/fr", json={"text": "{brand} : votre code {code}"}, headers=ADMIN
    )
    assert first.status_code == 201, first.text
    assert first.json()["version"] == 1 and first.json()["active"] is True
    assert first.json()["sms"] == {
        "encoding": "GSM-7",
        "segments": 1,
        "characters": len(" : votre code 123456"),
        "non_gsm7_characters": [],
    }
    second = await http.put(
        f"{base(app_id)}/sms/FR",
        json={"text": "Code {code} — {brand}"},
        headers={**ADMIN, "X-Operator": "jane"},
    )
    assert second.status_code == 201, second.text
    body = second.json()
    assert (body["version"], body["locale"], body["created_by"]) == (2, "fr", "jane")
    assert body["sms"]["encoding"] == "UCS-2" and body["sms"]["non_gsm7_characters"] == ["—"]

    listed = (await http.get(base(app_id), headers=ADMIN)).json()["templates"]
    assert [(t["channel"], t["locale"], t["version"]) for t in listed] == [("sms", "fr", 2)]
    versions = (await http.get(f"{base(app_id)}/sms/fr/versions", headers=ADMIN)).json()
    assert [(t["version"], t["active"]) for t in versions["templates"]] == [(2, True), (1, False)]

    preview = await http.post(
        f"{base(app_id)}/preview", json={"channel": "sms", "locale": "fr-CA"}, headers=ADMIN
    )
    assert preview.status_code == 200, preview.text
    assert preview.json()["text"] == "Code 123456 — Acme"
    assert (preview.json()["source"], preview.json()["version"]) == ("template", 2)
    # No template for ja nor for the default locale (de): the catalogue, in Japanese.
    catalogue = (
        await http.post(
            f"{base(app_id)}/preview", json={"channel": "sms", "locale": "ja"}, headers=ADMIN
        )
    ).json()
    assert catalogue["source"] == "catalogue" and catalogue["locale"] == "ja"
    submitted = (
        await http.post(
            f"{base(app_id)}/preview",
            json={
                "channel": "email",
                "locale": "en",
                "code": "999111",
                "template": {"text": "Use {code}", "subject": "{brand} sign-in"},
            },
            headers=ADMIN,
        )
    ).json()
    assert (submitted["subject"], submitted["text"]) == ("Acme sign-in", "Use 999111")
    assert submitted["sms"] is None and "999111" in submitted["html"]

    gone = await http.delete(f"{base(app_id)}/sms/fr", headers=ADMIN)
    assert gone.status_code == 204
    assert (await http.get(base(app_id), headers=ADMIN)).json()["templates"] == []
    problem(await http.delete(f"{base(app_id)}/sms/fr", headers=ADMIN), 404, "template-not-found")
    kept = (await http.get(f"{base(app_id)}/sms/fr/versions", headers=ADMIN)).json()["templates"]
    assert [(t["version"], t["active"]) for t in kept] == [(2, False), (1, False)]


async def test_invalid_templates_are_refused_per_field_and_nothing_changes(
    http: httpx.AsyncClient, store: Store
) -> None:
    app_id, _ = await new_app(store)
    refused = await http.put(
        f"{base(app_id)}/email/en",
        json={"text": "No code {user}", "html": "<p>{code}{code}</p>"},
        headers=ADMIN,
    )
    body = problem(refused, 422, "invalid-template")
    pointers = {e["pointer"] for e in body["errors"]}
    assert pointers == {"/text", "/subject", "/html"}, body
    assert any("{user}" in e["detail"] for e in body["errors"])
    problem(
        await http.put(f"{base(app_id)}/voice/en", json={"text": "{code}"}, headers=ADMIN),
        422,
        "invalid-template",
    )
    problem(
        await http.put(f"{base(app_id)}/sms/not_a_locale!", json={"text": "{code}"}, headers=ADMIN),
        422,
        "invalid-template",
    )
    problem(
        await http.put(f"{base(app_id)}/sms/en", json={"text": "{code}", "x": 1}, headers=ADMIN),
        422,
        "invalid-request",
    )
    assert (await http.get(base(app_id), headers=ADMIN)).json()["templates"] == []
    problem(await http.get(f"{base(app_id)}/sms/en/versions", headers=ADMIN), 404, "not-found")
    problem(await http.get(base("app_nope"), headers=ADMIN), 404, "application-not-found")
    assert (await http.get(base(app_id))).status_code == 401


async def test_a_delivery_uses_the_active_template_and_records_its_version(
    http: httpx.AsyncClient, store: Store, worker: None
) -> None:
    app_id, key = await new_app(store)
    saved = await http.put(
        f"{base(app_id)}/sms/de", json={"text": "{brand}-Code: {code}"}, headers=ADMIN
    )
    version = saved.json()["version"]
    # "it" has no template: the default locale's (de) is used.
    created = await http.post(
        "/v1/verifications", json={"to": "+14155550140", "locale": "it"}, headers=bearer(key)
    )
    assert created.status_code == 201, created.text
    vid = created.json()["id"]
    messages = await read_messages(http, Keys(key, key, key), vid)
    assert messages[0]["body"].startswith("Acme-Code: ")
    for _ in range(50):
        state = (await http.get(f"/v1/verifications/{vid}", headers=bearer(key))).json()
        if state["deliveries"][0]["template_version"] is not None:
            break
        await asyncio.sleep(0.05)
    assert state["deliveries"][0]["template_version"] == version
    # The event log says it too (written by the delivery activity, then the final batch).
    for _ in range(50):
        events = await http.get(f"/v1/verifications/{vid}/events", headers=bearer(key))
        assert events.status_code == 200, events.text
        sends = [e for e in events.json()["data"] if e["type"] in ("send_attempted", "sent")]
        if len(sends) == 2:
            break
        await asyncio.sleep(0.05)
    assert [e["template_version"] for e in sends] == [version, version]
