"""The console's security properties against the real app and store: CSP on every page,
CSRF refused, sessions ending when idle, sign-ins throttled, roles enforced."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import update

from api.console.mount import ROUTERS
from api.console.services import auth
from api.console.web import CSP
from api.main import create_app
from otp.risk.limits.factory import build_limiter
from otp.settings import Settings
from otp.store import Store, utcnow
from otp.store.applications import ensure_default_application
from otp.store.tables import ConsoleSession

PASSWORD = "correct horse battery staple"


@pytest.fixture
async def console(api_settings: Settings, store: Store) -> AsyncIterator[httpx.AsyncClient]:
    await ensure_default_application(store)
    await auth.add_user(store, username="ada", role="admin", password=PASSWORD)
    await auth.add_user(store, username="sam", role="support", password=PASSWORD)
    app = create_app(api_settings, store=store)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://console.test"
    ) as client:
        yield client


def _field(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


async def sign_in(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD
) -> httpx.Response:
    page = await client.get("/console/login")
    return await client.post(
        "/console/login",
        data={
            "username": username,
            "password": password,
            "csrf_token": _field(page.text, "csrf_token"),
        },
    )


async def test_every_console_page_carries_the_strict_headers(console: httpx.AsyncClient) -> None:
    paths = sorted(
        r.path
        for router in ROUTERS
        for r in router.routes
        if isinstance(r, APIRoute) and "GET" in (r.methods or set())
    )
    assert "/console/login" in paths and "/console/audit" in paths
    assert (await sign_in(console, "ada")).status_code == 303
    for path in [*paths, "/console/static/console.css", "/console/missing"]:
        response = await console.get(path)
        assert response.status_code < 500, path
        assert response.headers["content-security-policy"] == CSP, path
        assert "frame-ancestors 'none'" in CSP and "'unsafe-inline'" not in CSP
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        if response.headers.get("content-type", "").startswith("text/html"):
            assert "<script>" not in response.text and " style=" not in response.text, path


async def test_session_cookie_flags_and_a_post_without_csrf_is_refused(
    console: httpx.AsyncClient,
) -> None:
    signed = await sign_in(console, "ada")
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie  # OTP_ENV=dev without OTP_CONSOLE_SECURE_COOKIES
    refused = await console.post("/console/logout", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    missing = await console.post("/console/logout")
    assert missing.status_code == 403
    assert (await console.get("/console/")).status_code == 200  # still signed in: nothing changed
    home = await console.get("/console/")
    token = re.search(r'name="csrf-token" content="([^"]+)"', home.text)
    assert token
    out = await console.post("/console/logout", headers={"X-CSRF-Token": token.group(1)})
    assert out.status_code == 303
    assert (await console.get("/console/")).headers["location"] == "/console/login"


async def test_a_sign_in_form_without_its_token_is_refused(console: httpx.AsyncClient) -> None:
    response = await console.post(
        "/console/login", data={"username": "ada", "password": PASSWORD, "csrf_token": "x"}
    )
    assert response.status_code == 403
    assert auth.COOKIE not in response.cookies


async def test_an_idle_session_ends(console: httpx.AsyncClient, store: Store) -> None:
    assert (await sign_in(console, "ada")).status_code == 303
    assert (await console.get("/console/")).status_code == 200
    idle = timedelta(minutes=Settings().console_session_idle_minutes, seconds=1)
    async with store.writing() as conn:
        await conn.execute(
            update(ConsoleSession.__table__).values(last_seen_at=utcnow() - idle)  # type: ignore[attr-defined]
        )
    expired = await console.get("/console/")
    assert expired.status_code == 303
    assert expired.headers["location"] == "/console/login"
    async with store.session() as session:
        from sqlmodel import select

        assert (await session.exec(select(ConsoleSession))).all() == []


async def test_the_idle_clock_restarts_on_each_request(
    store: Store, api_settings: Settings
) -> None:
    await auth.add_user(store, username="ida", role="support", password=PASSWORD)
    limiter = build_limiter(api_settings, store)
    signed = await auth.sign_in(
        store,
        limiter,
        api_settings,
        b"k" * 32,
        username="ida",
        password=PASSWORD,
        address="10.0.0.1",
    )
    assert signed is not None
    token, _ = signed
    start = utcnow()
    for minutes in (20, 40, 60):  # each request within 30 min of the previous one
        assert await auth.resolve(
            store, api_settings, token, now=start + timedelta(minutes=minutes)
        )
    assert await auth.resolve(store, api_settings, token, now=start + timedelta(minutes=91)) is None


async def test_sign_ins_are_throttled_per_user_and_per_address(
    console: httpx.AsyncClient, store: Store, api_settings: Settings
) -> None:
    attempts = api_settings.console_login_attempts
    for _ in range(attempts):
        assert (await sign_in(console, "ada", "wrong")).status_code == 401
    throttled = await sign_in(console, "ada")  # the right password, but the window is full
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) > 0
    assert auth.COOKIE not in throttled.cookies

    limiter = build_limiter(api_settings, store)
    secret = b"s" * 32
    for n in range(attempts):  # a different user name each time, from one address
        assert (
            await auth.sign_in(
                store,
                limiter,
                api_settings,
                secret,
                username=f"u{n}",
                password="x",
                address="10.9.9.9",
            )
            is None
        )
    with pytest.raises(auth.LoginThrottled):
        await auth.sign_in(
            store,
            limiter,
            api_settings,
            secret,
            username="sam",
            password=PASSWORD,
            address="10.9.9.9",
        )
    # The limiter's keys are keyed hashes: neither the address nor the name in clear.
    keys = [hit.key for hit in auth.login_hits(api_settings, secret, "sam", "10.9.9.9")]
    assert all("10.9.9.9" not in key and "sam" not in key for key in keys)


async def test_support_cannot_open_the_audit_log_and_admins_see_changes(
    console: httpx.AsyncClient,
) -> None:
    assert (await sign_in(console, "sam")).status_code == 303
    refused = await console.get("/console/audit")
    assert refused.status_code == 403
    assert "Audit log" not in refused.text.split("<main>")[0]  # no nav entry for support
    console.cookies.clear()
    assert (await sign_in(console, "ada")).status_code == 303
    page = await console.get("/console/audit")
    assert page.status_code == 200
    assert "sign_in" in page.text and "sam" in page.text
