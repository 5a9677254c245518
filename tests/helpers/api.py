"""Fixtures for the HTTP facade: API keys, settings that match the test secrets, HTTP clients."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from api.services.verification_workflows import Timeouts
from otp.applications.keys import hash_api_key, new_api_key
from otp.domain import Mode
from otp.risk.policy import RiskSettings
from otp.settings import Secrets, Settings
from otp.store import Store
from otp.store.applications import create_api_key, create_application
from tests.conftest import real_worker
from tests.helpers.serving import served

# The code is the one word of 4-10 upper-case letters or digits in every template.
CODE_RE = re.compile(r"\b([0-9A-Z]{4,10})\b")


@dataclass(frozen=True)
class Keys:
    test: str
    live: str
    test_hashed: str  # configured only as sha256:<hex> (mode from its prefix)

    def auth(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    @property
    def test_headers(self) -> dict[str, str]:
        return self.auth(self.test)

    @property
    def live_headers(self) -> dict[str, str]:
        return self.auth(self.live)


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys(
        test=new_api_key(Mode.TEST),
        live=new_api_key(Mode.LIVE),
        test_hashed=new_api_key(Mode.TEST),
    )


def make_settings(data_dir: Path, task_queue: str, secrets: Secrets, keys: Keys) -> Settings:
    """Settings whose secrets equal the worker's (TEST_SECRETS) and with one key per form."""
    (key_id, key), *_ = secrets.codec_keys.items()
    return Settings(
        env="dev",
        data_dir=data_dir,
        task_queue=task_queue,
        api_keys=SecretStr(
            ",".join(
                (
                    keys.test,
                    f"sha256:live:{hash_api_key(keys.live)}",
                    f"sha256:{hash_api_key(keys.test_hashed)}",
                )
            )
        ),
        code_secret=SecretStr(secrets.code_secret.decode()),
        codec_keys=SecretStr(f"{key_id}:{base64.b64encode(key).decode()}"),
    )


@pytest.fixture
def api_settings(data_dir: Path, task_queue: str, secrets: Secrets, keys: Keys) -> Settings:
    return make_settings(data_dir, task_queue, secrets, keys)


@pytest.fixture
def timeouts() -> Timeouts:
    return Timeouts()


@pytest.fixture
async def http(
    api_settings: Settings, dev_env: WorkflowEnvironment, store: Store, timeouts: Timeouts
) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client against the app wired to the real dev server and the test store."""
    app = create_app(api_settings, client=dev_env.client, store=store, timeouts=timeouts)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api.test"
    ) as client:
        yield client


@pytest.fixture
async def worker(
    dev_env: WorkflowEnvironment, api_settings: Settings, store: Store
) -> AsyncIterator[None]:
    """A worker with the production activities on the test's queue and store."""
    async with real_worker(dev_env.client, api_settings, store):
        yield


async def read_messages(
    http: httpx.AsyncClient, keys: Keys, verification_id: str, *, count: int = 1
) -> list[dict[str, str]]:
    """Wait until the sandbox holds `count` messages for a verification; newest first."""
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        response = await http.get(
            "/v1/sandbox/messages",
            params={"verification_id": verification_id},
            headers=keys.test_headers,
        )
        assert response.status_code == 200, response.text
        messages: list[dict[str, str]] = response.json()["messages"]
        if len(messages) >= count or asyncio.get_running_loop().time() > deadline:
            assert len(messages) == count, messages
            return messages
        await asyncio.sleep(0.05)


def code_in(message: dict[str, str]) -> str:
    match = CODE_RE.search(message["body"])
    assert match, message["body"]
    return match.group(1)


async def read_code(http: httpx.AsyncClient, keys: Keys, verification_id: str) -> str:
    """The code the sandbox received for a verification's first delivery."""
    return code_in((await read_messages(http, keys, verification_id))[0])


def wrong_code(code: str) -> str:
    """A code of the same shape that is certainly not `code`."""
    return "".join("1" if c != "1" else "2" for c in code)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def application_with_key(
    store: Store, risk: RiskSettings, *, name: str = "Tested"
) -> tuple[str, str]:
    """A new application with these risk settings, and a test-mode key of it."""
    application = await create_application(store, name=name, risk=risk)
    key = await create_api_key(store, application_id=application.id, mode=Mode.TEST)
    return application.id, key.key


@pytest.fixture
async def service_url(
    api_settings: Settings,
    dev_env: WorkflowEnvironment,
    store: Store,
    worker: None,
) -> AsyncIterator[str]:
    """The real API over HTTP, with its own Temporal client and the worker's store."""
    settings = api_settings.model_copy(
        update={"temporal_address": dev_env.client.service_client.config.target_host}
    )
    async with served(create_app(settings)) as url:
        yield url
