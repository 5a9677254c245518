"""The quickstart walked in headless Chromium against the real stack: the API served by
uvicorn, the Temporal dev server and a worker with the production activities (sandbox)."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from api.console.services import auth
from api.main import create_app
from otp.settings import Settings
from otp.store import Store
from otp.store.applications import ensure_default_application
from tests.conftest import real_worker
from tests.helpers.serving import served

PASSWORD = "quickstart-pass-12"
ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


@pytest.fixture
async def stack_url(
    api_settings: Settings, dev_env: WorkflowEnvironment, store: Store
) -> AsyncIterator[str]:
    await ensure_default_application(store)
    await auth.add_user(store, username="ada", role="admin", password=PASSWORD)
    app = create_app(api_settings, client=dev_env.client, store=store)
    async with real_worker(dev_env.client, api_settings, store), served(app) as url:
        yield url


async def test_quickstart_end_to_end_in_the_browser(stack_url: str) -> None:
    from playwright.async_api import async_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does it)")
    shots = ROOT / "build" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            await page.goto(f"{stack_url}/console/login")
            await page.fill("input[name=username]", "ada")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[type=submit]")
            await page.goto(f"{stack_url}/console/quickstart")
            await page.click("#create-app")
            key = await page.text_content("#new-key")
            assert key and key.startswith("otp_test_")
            await page.click("#send-code")
            await page.wait_for_selector("#inbox .message", timeout=15_000)
            body = await page.text_content("#inbox .message") or ""
            code = re.search(r"\b(\d{6})\b", body)
            assert code, body
            shot = shots / "test_quickstart_end_to_end_in_the_browser-inbox.png"
            await page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot}")
            await page.fill("input[name=code]", code.group(1))
            await page.click("#check-code")
            result = await page.text_content("#result")
            shot = shots / "test_quickstart_end_to_end_in_the_browser.png"
            await page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot}")
        finally:
            await browser.close()
    assert result and "approved" in result
    assert errors == []
    assert time.monotonic() - started < 60  # the whole loop, well under a minute
