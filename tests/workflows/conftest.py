"""Fixtures for workflow tests on the time-skipping server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from otp.settings import Settings
from otp.store import Store
from tests.conftest import real_worker


@pytest.fixture
async def sandbox_worker(
    ts_env: WorkflowEnvironment, settings: Settings, store: Store
) -> AsyncIterator[Worker]:
    """The production worker (real activities, sandbox provider writing to `store`)."""
    async with real_worker(ts_env.client, settings, store) as worker:
        yield worker
