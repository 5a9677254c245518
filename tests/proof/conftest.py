"""Fixtures for the proofs: the API served by uvicorn on a real socket, with a real worker.

Everything is real: the Temporal dev server (`dev_env`), a worker with the production
activities (`real_worker`), and `create_app(settings)` whose lifespan connects its own
Temporal client and store. Each test gets its own task queue, data directory and server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from otp.domain import Mode
from otp.settings import Secrets, Settings, generate_api_key
from otp.store import Store
from tests.api.conftest import Keys, make_settings
from tests.conftest import real_worker
from tests.helpers.serving import served

# Updates beyond 10 in flight per workflow are delayed by the server (~1 s each retry):
# wait long enough on the client side and never queue requests behind a pool limit.
HTTP_TIMEOUT_S = 60.0
HTTP_LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=200)


@dataclass(frozen=True)
class Api:
    http: httpx.AsyncClient  # authenticated with the test-mode key
    keys: Keys


@pytest.fixture(scope="session")
def proof_keys() -> Keys:
    return Keys(
        test=generate_api_key(Mode.TEST),
        live=generate_api_key(Mode.LIVE),
        test_hashed=generate_api_key(Mode.TEST),
    )


@pytest.fixture
def proof_settings(data_dir: Path, task_queue: str, secrets: Secrets, proof_keys: Keys) -> Settings:
    return make_settings(data_dir, task_queue, secrets, proof_keys)


@pytest.fixture
async def api(
    proof_settings: Settings, proof_keys: Keys, dev_env: WorkflowEnvironment, store: Store
) -> AsyncIterator[Api]:
    """uvicorn + the app on a free port, a real worker on the test's queue, an HTTP client."""
    settings = proof_settings.model_copy(
        update={"temporal_address": dev_env.client.service_client.config.target_host}
    )
    async with (
        served(create_app(settings)) as url,
        real_worker(dev_env.client, settings, store),
        httpx.AsyncClient(
            base_url=url,
            headers=proof_keys.test_headers,
            timeout=HTTP_TIMEOUT_S,
            limits=HTTP_LIMITS,
        ) as http,
    ):
        yield Api(http=http, keys=proof_keys)
