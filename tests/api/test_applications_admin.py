"""Admin API and API keys over HTTP: applications, key lifecycle, defaults, isolation."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from api.auth import ApiKeyAuthenticator
from api.main import create_app
from api.services.verification_workflows import Timeouts
from otp.applications.keys import new_api_key
from otp.domain import Mode
from otp.settings import Settings, admin_token
from otp.store import Store
from otp.store.applications import (
    create_api_key,
    create_application,
    ensure_default_application,
    revoke_api_key,
)
from tests.conftest import real_worker
from tests.helpers.api import CODE_RE, Keys
from tests.helpers.cli import free_port

ADMIN_TOKEN = "admin-token-for-the-tests-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PHONE = "+14155550123"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def comparable(problem: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in problem.items() if k not in ("instance", "request_id")}


@pytest.fixture
def admin_settings(api_settings: Settings) -> Settings:
    # Live email goes to a closed port: live verifications start, their sends fail quietly.
    return api_settings.model_copy(
        update={"admin_token": SecretStr(ADMIN_TOKEN), "smtp_port": free_port()}
    )


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test")


@pytest.fixture
async def http(
    admin_settings: Settings, dev_env: WorkflowEnvironment, store: Store
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(admin_settings, client=dev_env.client, store=store, timeouts=Timeouts())
    async with _client(app) as client:
        yield client


@pytest.fixture
async def worker(
    dev_env: WorkflowEnvironment, admin_settings: Settings, store: Store
) -> AsyncIterator[None]:
    async with real_worker(dev_env.client, admin_settings, store):
        yield


async def new_app(http: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await http.post(
        "/v1/admin/applications", json={"name": "Shop", **body}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def new_key(http: httpx.AsyncClient, application_id: str, mode: str = "test") -> str:
    response = await http.post(
        f"/v1/admin/applications/{application_id}/keys", json={"mode": mode}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


async def sandbox_messages(
    http: httpx.AsyncClient, key: str, verification_id: str
) -> list[dict[str, Any]]:
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        response = await http.get(
            "/v1/sandbox/messages", params={"verification_id": verification_id}, headers=bearer(key)
        )
        assert response.status_code == 200, response.text
        messages: list[dict[str, Any]] = response.json()["messages"]
        if messages or asyncio.get_running_loop().time() > deadline:
            return messages
        await asyncio.sleep(0.05)


# ----------------------------------------------------------------------- admin auth
async def test_admin_routes_need_the_admin_token(http: httpx.AsyncClient, keys: Keys) -> None:
    routes = [
        ("GET", "/v1/admin/applications", None),
        ("POST", "/v1/admin/applications", {"name": "x"}),
        ("GET", "/v1/admin/applications/default", None),
        ("PATCH", "/v1/admin/applications/default", {"brand": "x"}),
        ("GET", "/v1/admin/applications/default/keys", None),
        ("POST", "/v1/admin/applications/default/keys", {"mode": "test"}),
        ("POST", f"/v1/admin/applications/default/keys/key_{'a' * 26}/revoke", None),
    ]
    bodies = []
    for method, path, body in routes:
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
            bearer(keys.test),  # an API key is not the admin token
            {"Authorization": f"Basic {ADMIN_TOKEN}"},
        ):
            response = await http.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, (path, headers, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["www-authenticate"].startswith("Bearer")
            bodies.append(comparable(response.json()))
    assert all(b == bodies[0] for b in bodies)
    assert bodies[0]["type"] == "urn:otp:problem:admin-unauthorized"
    assert ADMIN_TOKEN not in str(bodies)
    ok = await http.get("/v1/admin/applications", headers=ADMIN)
    assert ok.status_code == 200
    assert ok.headers["cache-control"] == "no-store"


async def test_admin_api_is_404_in_production_without_a_token(
    api_settings: Settings, store: Store
) -> None:
    settings = api_settings.model_copy(update={"env": "production", "admin_token": None})
    app = create_app(settings, client=object(), store=store)  # type: ignore[arg-type]
    async with _client(app) as client:
        for headers in ({}, ADMIN):
            off = await client.get("/v1/admin/applications", headers=headers)
            unknown = await client.get("/v1/no-such-route", headers=headers)
            assert off.status_code == unknown.status_code == 404
            assert comparable(off.json()) == comparable(unknown.json())
    assert not (settings.data_dir / "admin_token").exists()


async def test_dev_generates_the_admin_token_into_the_data_dir(
    api_settings: Settings, store: Store
) -> None:
    app = create_app(api_settings, client=object(), store=store)  # type: ignore[arg-type]
    path = api_settings.data_dir / "admin_token"
    assert path.stat().st_mode & 0o777 == 0o600
    token = path.read_text().strip()
    assert token == admin_token(api_settings) and len(token) >= 40
    async with _client(app) as client:
        assert (
            await client.get("/v1/admin/applications", headers=bearer(token))
        ).status_code == 200


# ---------------------------------------------------------------------- applications
async def test_application_create_read_list_update(http: httpx.AsyncClient) -> None:
    created = await new_app(
        http,
        name="Web shop",
        brand="Acme",
        defaults={"channels": [{"channel": "sms", "timeout_s": 30}], "code_length": 8},
        allowed_channels=["sms", "email"],
    )
    app_id = created["id"]
    assert app_id.startswith("app_") and len(app_id) == 30
    assert created["defaults"] == {
        "channels": [{"channel": "sms", "timeout_s": 30}],
        "code_length": 8,
        "code_type": None,
        "ttl_s": None,
        "max_attempts": None,
        "locale": None,
        "web_domain": None,
    }
    read = await http.get(f"/v1/admin/applications/{app_id}", headers=ADMIN)
    assert read.status_code == 200 and read.json() == created

    second = await new_app(http, name="Second")
    page = (await http.get("/v1/admin/applications?limit=1", headers=ADMIN)).json()
    assert [a["id"] for a in page["applications"]] == [app_id]
    assert page["next_after"] == app_id
    rest = (await http.get(f"/v1/admin/applications?limit=1&after={app_id}", headers=ADMIN)).json()
    assert [a["id"] for a in rest["applications"]] == [second["id"]]
    assert rest["next_after"] is None

    patched = await http.patch(
        f"/v1/admin/applications/{app_id}", json={"brand": "Acme Inc"}, headers=ADMIN
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["brand"] == "Acme Inc"
    assert patched.json()["defaults"]["code_length"] == 8  # left out: kept

    for path in ("app_" + "z" * 26, "nope"):
        missing = await http.get(f"/v1/admin/applications/{path}", headers=ADMIN)
        assert missing.status_code == 404, path
        assert missing.json()["type"] == "urn:otp:problem:application-not-found"


async def test_invalid_application_settings_are_422(http: httpx.AsyncClient) -> None:
    for body in (
        {"name": ""},
        {"name": "x", "defaults": {"code_length": 12}},
        {"name": "x", "defaults": {"ttl_s": 5}},
        {"name": "x", "defaults": {"channels": [{"channel": "fax"}]}},
        {"name": "x", "allowed_channels": ["fax"]},
        {
            "name": "x",
            "defaults": {"channels": [{"channel": "voice"}]},
            "allowed_channels": ["sms"],
        },
        {"name": "x", "brand": "b" * 41},
        {"name": "x", "surprise": True},
    ):
        response = await http.post("/v1/admin/applications", json=body, headers=ADMIN)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["type"] == "urn:otp:problem:invalid-request"
    app = await new_app(http, defaults={"channels": [{"channel": "sms"}]})
    conflict = await http.patch(
        f"/v1/admin/applications/{app['id']}", json={"allowed_channels": ["email"]}, headers=ADMIN
    )
    assert conflict.status_code == 422, conflict.text
    assert conflict.json()["errors"][0]["pointer"] == "#/allowed_channels"


# ---------------------------------------------------------------------- key lifecycle
@pytest.mark.usefixtures("worker")
async def test_key_lifecycle_create_use_list_revoke(http: httpx.AsyncClient, store: Store) -> None:
    app = await new_app(http, brand="Acme", defaults={"code_length": 8})
    created = await http.post(
        f"/v1/admin/applications/{app['id']}/keys",
        json={"mode": "test", "name": "staging"},
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    key = body["key"]
    assert key.startswith("otp_test_") and len(key) == len("otp_test_") + 43
    assert body["hint"] == f"otp_test_…{key[-4:]}"
    assert (body["mode"], body["name"], body["application_id"]) == ("test", "staging", app["id"])
    assert "key_hash" not in body

    started = await http.post("/v1/verifications", json={"to": PHONE}, headers=bearer(key))
    assert started.status_code == 201, started.text
    assert started.json()["code_length"] == 8  # the application's default
    (message,) = await sandbox_messages(http, key, started.json()["id"])
    assert "Acme" in message["body"]
    assert any(len(m) == 8 for m in CODE_RE.findall(message["body"]))

    listed = await http.get(f"/v1/admin/applications/{app['id']}/keys", headers=ADMIN)
    (shown,) = listed.json()["keys"]
    assert key not in listed.text and "key_hash" not in shown
    assert shown["last_used_at"] is not None and shown["revoked_at"] is None

    revoke = f"/v1/admin/applications/{app['id']}/keys/{body['id']}/revoke"
    revoked = await http.post(revoke, headers=ADMIN)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    again = await http.post(revoke, headers=ADMIN)
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]

    path = f"/v1/verifications/{started.json()['id']}"
    refused = await http.get(path, headers=bearer(key))
    unknown = await http.get(path, headers=bearer(new_api_key(Mode.TEST)))
    malformed = await http.get(path, headers=bearer("otp_test_short"))
    assert refused.status_code == unknown.status_code == malformed.status_code == 401
    assert comparable(refused.json()) == comparable(unknown.json()) == comparable(malformed.json())
    assert refused.headers["www-authenticate"] == unknown.headers["www-authenticate"]

    for wrong in (
        f"/v1/admin/applications/{app['id']}/keys/key_{'q' * 26}/revoke",
        f"/v1/admin/applications/{app['id']}/keys/nope/revoke",
    ):
        missing = await http.post(wrong, headers=ADMIN)
        assert missing.status_code == 404
        assert missing.json()["type"] == "urn:otp:problem:api-key-not-found"
    other = await new_app(http, name="Other")
    cross = await http.post(
        f"/v1/admin/applications/{other['id']}/keys/{body['id']}/revoke", headers=ADMIN
    )
    assert cross.status_code == 404  # a key is revoked through its own application only
    no_app = await http.post(
        f"/v1/admin/applications/app_{'x' * 26}/keys", json={"mode": "live"}, headers=ADMIN
    )
    assert no_app.status_code == 404
    assert no_app.json()["type"] == "urn:otp:problem:application-not-found"


async def test_revocation_reaches_other_processes_within_the_cache_ttl(
    admin_settings: Settings, dev_env: WorkflowEnvironment, store: Store
) -> None:
    app = await create_application(store, name="Cache")
    created = await create_api_key(store, application_id=app.id, mode=Mode.TEST)
    other_process = create_app(admin_settings, client=dev_env.client, store=store)
    other_process.state.authenticator = ApiKeyAuthenticator.from_settings(
        admin_settings, cache_ttl_s=0.5
    )
    path = "/v1/sandbox/messages"
    async with _client(other_process) as client:
        assert (await client.get(path, headers=bearer(created.key))).status_code == 200
        await revoke_api_key(store, key_id=created.api_key.id)  # elsewhere: the CLI, say
        assert (await client.get(path, headers=bearer(created.key))).status_code == 200  # cached
        await asyncio.sleep(0.6)
        assert (await client.get(path, headers=bearer(created.key))).status_code == 401


# ------------------------------------------------------------------ defaults and policy
async def test_application_defaults_fill_what_the_request_leaves_out(
    http: httpx.AsyncClient,
) -> None:
    app = await new_app(
        http,
        defaults={
            "channels": [
                {"channel": "whatsapp", "timeout_s": 30},
                {"channel": "email", "timeout_s": 45},
                {"channel": "sms", "timeout_s": 90},
            ],
            "code_length": 8,
            "code_type": "alphanumeric",
            "ttl_s": 300,
            "max_attempts": 3,
            "locale": "fr",
        },
    )
    key = await new_key(http, app["id"])
    response = await http.post("/v1/verifications", json={"to": PHONE}, headers=bearer(key))
    assert response.status_code == 201, response.text
    body = response.json()
    # The default plan's steps that fit a phone number, in order.
    assert [(s["channel"], s["timeout_s"]) for s in body["channels"]] == [
        ("whatsapp", 30),
        ("sms", 90),
    ]
    assert (body["code_length"], body["code_type"], body["max_attempts"], body["locale"]) == (
        8,
        "alphanumeric",
        3,
        "fr",
    )
    email = await http.post(
        "/v1/verifications", json={"to": "jane@example.com"}, headers=bearer(key)
    )
    assert [(s["channel"], s["timeout_s"]) for s in email.json()["channels"]] == [("email", 45)]

    explicit = await http.post(
        "/v1/verifications",
        json={
            "to": PHONE,
            "channels": [{"channel": "voice"}],
            "code_length": 6,
            "code_type": "numeric",
            "max_attempts": 5,
            "locale": "en",
        },
        headers=bearer(key),
    )
    assert explicit.status_code == 201, explicit.text
    got = explicit.json()
    assert [s["channel"] for s in got["channels"]] == ["voice"]
    assert (got["code_length"], got["code_type"], got["max_attempts"], got["locale"]) == (
        6,
        "numeric",
        5,
        "en",
    )


async def test_channels_outside_the_allowed_ones_are_403(http: httpx.AsyncClient) -> None:
    app = await new_app(http, allowed_channels=["email", "whatsapp"])
    key = await new_key(http, app["id"])
    for body, refused in (
        ({"to": PHONE, "channels": [{"channel": "sms"}]}, ["sms"]),
        ({"to": PHONE}, ["sms"]),  # the implied channel is checked too
        (
            {"to": PHONE, "channels": [{"channel": "whatsapp"}, {"channel": "voice"}]},
            ["voice"],
        ),
    ):
        response = await http.post("/v1/verifications", json=body, headers=bearer(key))
        assert response.status_code == 403, response.text
        problem = response.json()
        assert problem["type"] == "urn:otp:problem:channel-not-allowed"
        assert problem["refused_channels"] == refused
        assert problem["allowed_channels"] == ["email", "whatsapp"]
    ok = await http.post(
        "/v1/verifications",
        json={"to": PHONE, "channels": [{"channel": "whatsapp"}]},
        headers=bearer(key),
    )
    assert ok.status_code == 201, ok.text


# ------------------------------------------------------------------------- isolation
@pytest.mark.usefixtures("worker")
async def test_keys_see_only_their_own_application_and_mode(
    http: httpx.AsyncClient, keys: Keys
) -> None:
    first, second = await new_app(http, name="First"), await new_app(http, name="Second")
    test_key, live_key = await new_key(http, first["id"]), await new_key(http, first["id"], "live")
    other_key = await new_key(http, second["id"])

    live = await http.post(
        "/v1/verifications", json={"to": "jane@example.com"}, headers=bearer(live_key)
    )
    assert live.status_code == 201, live.text
    assert live.json()["mode"] == "live"
    test = await http.post("/v1/verifications", json={"to": PHONE}, headers=bearer(test_key))
    assert test.status_code == 201, test.text

    unknown_body = None
    for owner, vid in ((live_key, live.json()["id"]), (test_key, test.json()["id"])):
        assert (
            await http.get(f"/v1/verifications/{vid}", headers=bearer(owner))
        ).status_code == 200
        for stranger in {live_key, test_key, other_key, keys.test} - {owner}:
            response = await http.get(f"/v1/verifications/{vid}", headers=bearer(stranger))
            assert response.status_code == 404, response.text
            body = comparable(response.json())
            unknown_body = unknown_body or body
            assert body == unknown_body
    # A test key never sees a live message either: the sandbox holds test deliveries only.
    (message,) = await sandbox_messages(http, test_key, test.json()["id"])
    assert message["verification_id"] == test.json()["id"]
    stranger_view = await http.get(
        "/v1/sandbox/messages",
        params={"verification_id": test.json()["id"]},
        headers=bearer(other_key),
    )
    assert stranger_view.json()["messages"] == []
    assert (await http.get("/v1/sandbox/messages", headers=bearer(live_key))).status_code == 403


# ---------------------------------------------------------------------------- timing
async def test_refusals_take_the_same_time_whatever_the_reason(
    api_settings: Settings, store: Store, tmp_path: Path
) -> None:
    """Unknown, revoked and malformed keys all cost one hash and one indexed lookup."""
    app = await create_application(store, name="Timing")
    revoked = await create_api_key(store, application_id=app.id, mode=Mode.TEST)
    await revoke_api_key(store, key_id=revoked.api_key.id)
    for _ in range(50):  # a realistic table: the lookup is an index probe, not a scan
        await create_api_key(store, application_id=app.id, mode=Mode.LIVE)
    auth = ApiKeyAuthenticator.from_settings(api_settings, cache_ttl_s=0)
    kinds: dict[str, Callable[[], str]] = {
        "unknown": lambda: new_api_key(Mode.TEST),
        "revoked": lambda: revoked.key,
        "malformed": lambda: "not-a-key-" + new_api_key(Mode.LIVE)[9:],
    }
    samples: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(3):  # warm up connections and caches of the database itself
        for make in kinds.values():
            assert await auth.resolve(make(), store) is None
    for _ in range(150):
        for kind, make in kinds.items():  # interleaved: drift hits every kind alike
            presented = make()
            started = time.perf_counter()
            assert await auth.resolve(presented, store) is None
            samples[kind].append(time.perf_counter() - started)
    medians = {kind: statistics.median(values) for kind, values in samples.items()}
    assert max(medians.values()) < 2.5 * min(medians.values()), medians


async def test_settings_keys_belong_to_the_default_application(
    http: httpx.AsyncClient, keys: Keys, store: Store
) -> None:
    # Before the default application exists (no lifespan yet) the API's own defaults apply.
    before = await http.post("/v1/verifications", json={"to": PHONE}, headers=keys.test_headers)
    assert before.status_code == 201, before.text
    assert before.json()["code_length"] == 6
    await ensure_default_application(store)
    patched = await http.patch(
        "/v1/admin/applications/default",
        json={"defaults": {"code_length": 7}, "allowed_channels": ["sms"]},
        headers=ADMIN,
    )
    assert patched.status_code == 200, patched.text
    # The update dropped this process's cached principals of `default`: no wait.
    after = await http.post("/v1/verifications", json={"to": PHONE}, headers=keys.test_headers)
    assert after.status_code == 201, after.text
    assert after.json()["code_length"] == 7
    email = await http.post(
        "/v1/verifications", json={"to": "jane@example.com"}, headers=keys.test_headers
    )
    assert email.status_code == 403
    # Keys of `default` can be issued from the store too.
    key = await new_key(http, "default", "test")
    assert (await http.get("/v1/sandbox/messages", headers=bearer(key))).status_code == 200
