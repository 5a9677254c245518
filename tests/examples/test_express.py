"""The Express example (examples/express), run with `node server.js` and driven like a browser."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from tests.examples import scenario
from tests.helpers.api import Keys
from tests.helpers.node import node_executable, npm_ci
from tests.helpers.serving import free_port

FOLDER = scenario.ROOT / "examples" / "express"


@asynccontextmanager
async def express_example(
    port: int, env: Mapping[str, str], log: Path
) -> AsyncIterator[scenario.Example]:
    await npm_ci(FOLDER)
    argv = [node_executable(), "server.js"]
    env = {**env, "PORT": str(port), "HOST": "127.0.0.1", "SESSION_SECRET": "test-secret"}
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
    async with express_example(port, env, tmp_path / "example.log") as example:
        await scenario.sign_in(example, service_url, keys)
        assert keys.test not in example.log_text()


async def test_webhook_signatures(tmp_path: Path) -> None:
    secret = scenario.new_secret()
    env = {
        "OTP_URL": "http://127.0.0.1:9",  # never called: only webhooks are sent here
        "OTP_API_KEY": "otp_test_unused",
        "OTP_WEBHOOK_SECRET": secret,
    }
    async with express_example(free_port(), env, tmp_path / "example.log") as example:
        await scenario.webhooks(example, secret)
