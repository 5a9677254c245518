"""Applications and keys in the console: a key shown once, revoked, audited without the
key; support refused; a change without its CSRF token refused and nothing changed."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from api.console.services import auth
from api.main import create_app
from otp.applications.keys import hash_api_key
from otp.settings import Settings
from otp.store import Store
from otp.store.applications import ensure_default_application, find_api_key, list_applications
from otp.store.console import list_audit

PASSWORD = "applications-pass-1"


@pytest.fixture
async def app_client(api_settings: Settings, store: Store) -> AsyncIterator[httpx.AsyncClient]:
    await ensure_default_application(store)
    await auth.add_user(store, username="ada", role="admin", password=PASSWORD)
    await auth.add_user(store, username="sam", role="support", password=PASSWORD)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(api_settings, store=store)),
        base_url="http://console.test",
    ) as client:
        yield client


async def sign_in(client: httpx.AsyncClient, username: str) -> str:
    """Sign in; the session's CSRF token."""
    client.cookies.clear()
    page = await client.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    signed = await client.post(
        "/console/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)},
    )
    assert signed.status_code == 303
    home = await client.get("/console/")
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', home.text)
    assert csrf
    return csrf.group(1)


async def test_create_show_once_and_revoke_a_key(
    app_client: httpx.AsyncClient, store: Store
) -> None:
    csrf = await sign_in(app_client, "ada")
    made = await app_client.post("/console/applications", data={"name": "Shop", "csrf_token": csrf})
    assert made.status_code == 303
    app_path = made.headers["location"]
    app_id = app_path.rsplit("/", 1)[1]
    created = await app_client.post(
        f"{app_path}/keys", data={"mode": "test", "name": "ci", "csrf_token": csrf}
    )
    assert created.status_code == 200
    shown = re.search(r'<code id="new-key">(otp_test_[A-Za-z0-9_-]+)</code>', created.text)
    assert shown
    key = shown.group(1)
    found = await find_api_key(store, key_hash=hash_api_key(key))
    assert found is not None and found.application.id == app_id  # an active key of the app

    again = await app_client.get(app_path)
    assert key not in again.text and "new-key" not in again.text  # shown once
    key_id = found.key_id
    revoked = await app_client.post(f"{app_path}/keys/{key_id}/revoke", data={"csrf_token": csrf})
    assert revoked.status_code == 303
    assert await find_api_key(store, key_hash=hash_api_key(key)) is None  # no longer active

    audit = await list_audit(store)
    assert [e.action for e in audit][:3] == [
        "api_key.revoke",
        "api_key.create",
        "application.create",
    ]
    assert all(key not in str(e.details) and key not in e.target for e in audit)
    log = await app_client.get("/console/audit")
    assert "api_key.create" in log.text and key not in log.text


async def test_support_is_refused_and_a_change_needs_its_token(
    app_client: httpx.AsyncClient, store: Store
) -> None:
    before = len(await list_applications(store))
    csrf = await sign_in(app_client, "ada")
    forged = await app_client.post(
        "/console/applications", data={"name": "Evil", "csrf_token": "x"}
    )
    assert forged.status_code == 403
    assert len(await list_applications(store)) == before
    assert csrf

    support_csrf = await sign_in(app_client, "sam")
    for path in ("/console/applications", "/console/applications/default", "/console/audit"):
        page = await app_client.get(path)
        assert page.status_code == 403, path
        assert "otp_test_" not in page.text and "otp_live_" not in page.text
    post = await app_client.post(
        "/console/applications/default/keys", data={"mode": "live", "csrf_token": support_csrf}
    )
    assert post.status_code == 403
    assert "otp_live_" not in post.text
    assert len(await list_applications(store)) == before
