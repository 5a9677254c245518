"""The FastAPI example (examples/fastapi), run under uvicorn and driven like a browser."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from tests.examples import scenario
from tests.helpers.api import Keys

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
    await scenario.sign_in_with_the_services_webhook(fastapi_example, service_url, keys, tmp_path)


async def test_webhook_signatures(tmp_path: Path) -> None:
    await scenario.webhook_signatures(fastapi_example, tmp_path)
