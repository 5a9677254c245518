"""The FastAPI example (examples/fastapi), run under uvicorn and driven like a browser."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from tests.examples import scenario
from tests.helpers.api import Keys
from tests.helpers.serving import free_port

FOLDER = scenario.ROOT / "examples" / "fastapi"


@asynccontextmanager
async def fastapi_example(
    port: int, env: Mapping[str, str], log: Path
) -> AsyncIterator[scenario.Example]:
    argv = [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)]
    async with scenario.running(argv, cwd=FOLDER, port=port, env=env, log=log) as example:
        yield example


async def test_sign_in_with_a_code_and_the_services_webhook(
    service_url: str, keys: Keys, tmp_path: Path
) -> None:
    port = free_port()
    secret = await scenario.register_endpoint(
        service_url, keys, f"http://127.0.0.1:{port}/webhooks/otp"
    )
    env = {
        "OTP_URL": service_url,
        "OTP_API_KEY": keys.test,
        "OTP_WEBHOOK_SECRET": secret,
        "APP_USERS": f"{scenario.KNOWN},someone@example.com",
    }
    async with fastapi_example(port, env, tmp_path / "example.log") as example:
        await scenario.sign_in(example, service_url, keys)
        assert keys.test not in example.log_text()


async def test_webhook_signatures(tmp_path: Path) -> None:
    secret = scenario.new_secret()
    env = {
        "OTP_URL": "http://127.0.0.1:9",  # never called: only webhooks are sent here
        "OTP_API_KEY": "otp_test_unused",
        "OTP_WEBHOOK_SECRET": secret,
    }
    async with fastapi_example(free_port(), env, tmp_path / "example.log") as example:
        await scenario.webhooks(example, secret)
