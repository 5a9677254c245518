"""Fixtures of the service tests: the store's limiter (no Redis, no Temporal)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from otp.risk.limits.store import StoreLimiter
from otp.store import Store


@pytest.fixture
async def limiter(store: Store) -> AsyncIterator[StoreLimiter]:
    limiter = StoreLimiter(store)
    yield limiter
    await limiter.close()
