"""The Express example (examples/express), run with `node server.js` and driven like a browser."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from tests.examples import scenario
from tests.helpers.api import Keys
from tests.helpers.node import node_executable, npm_ci

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
    await scenario.sign_in_with_the_services_webhook(express_example, service_url, keys, tmp_path)


async def test_webhook_signatures(tmp_path: Path) -> None:
    await scenario.webhook_signatures(express_example, tmp_path)
