"""The dashboard page from the store's records, and drawn in headless Chromium."""

from __future__ import annotations

import html
import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.console.services import auth
from api.main import create_app
from otp.settings import Settings
from otp.store import Store, utcnow
from otp.store.applications import ensure_default_application
from otp.store.tables import VerificationRecord
from tests.helpers.serving import served

PASSWORD = "dashboard-password-1"
ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = "/usr/bin/chromium"


async def seed(store: Store) -> None:
    await ensure_default_application(store)
    await auth.add_user(store, username="sam", role="support", password=PASSWORD)
    now = utcnow()
    rows = [
        VerificationRecord(
            id=f"ver_dash{n}",
            application_id="default",
            mode="test",
            status=status,
            first_channel=channel,
            channel=channel,
            country=country,
            to_masked="+1********23",
            created_at=now - timedelta(hours=n + 1),
            expires_at=now,
            finished_at=now - timedelta(hours=n),
            delivered=True,
            time_to_verify_ms=1200 + n,
            final=True,
        )
        for n, (status, channel, country) in enumerate(
            [("approved", "sms", "US"), ("approved", "email", None), ("expired", "sms", "FR")]
        )
    ]
    async with store.write_guard(), store.session() as session:
        session.add_all(rows)
        await session.commit()


async def sign_in(client: httpx.AsyncClient) -> None:
    page = await client.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    signed = await client.post(
        "/console/login",
        data={"username": "sam", "password": PASSWORD, "csrf_token": token.group(1)},
    )
    assert signed.status_code == 303


async def test_dashboard_figures_and_chart_data(api_settings: Settings, store: Store) -> None:
    await seed(store)
    app = create_app(api_settings, store=store)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://console.test"
    ) as client:
        await sign_in(client)
        page = await client.get("/console/dashboard", params={"app": "default", "mode": "test"})
    assert page.status_code == 200
    charts = [
        json.loads(html.unescape(raw)) for raw in re.findall(r'data-chart="([^"]+)"', page.text)
    ]
    day, country, channel = charts
    assert sum(day["series"]["started"]) == 3
    assert country["labels"] == ["?", "FR", "US"]
    assert dict(zip(channel["labels"], channel["series"]["approved"], strict=True)) == {
        "email": 1,
        "sms": 1,
    }
    assert "<td>66.7%</td>" in page.text  # conversion: 2 of 3


@pytest.fixture
async def console_url(
    api_settings: Settings, dev_env: WorkflowEnvironment, store: Store
) -> AsyncIterator[str]:
    await seed(store)
    app = create_app(api_settings, client=dev_env.client, store=store)
    async with served(app) as url:
        yield url


async def test_dashboard_draws_its_charts_in_chromium(console_url: str) -> None:
    from playwright.async_api import async_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does it)")
    shots = ROOT / "build" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            await page.goto(f"{console_url}/console/login")
            await page.fill("input[name=username]", "sam")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{console_url}/console/")
            await page.goto(f"{console_url}/console/dashboard?app=default&mode=test")
            await page.wait_for_function("document.querySelectorAll('canvas.chart').length === 3")
            painted = await page.evaluate(
                """() => [...document.querySelectorAll('canvas.chart')].map(c => {
                    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                    let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
                    return n; })"""
            )
            path = shots / "test_dashboard_draws_its_charts_in_chromium.png"
            await page.screenshot(path=str(path), full_page=True)
            print(f"screenshot: {path}")
        finally:
            await browser.close()
    assert all(n > 500 for n in painted), painted  # every chart drew pixels
    assert errors == []  # no CSP violation, no script error
