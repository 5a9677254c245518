"""The limits suite runs against every backend: the store on SQLite and on PostgreSQL
(`any_store`: a fresh database per test, skipped when PostgreSQL is absent) and Redis at
127.0.0.1:6379 (`OTP_TEST_REDIS_URL`; a key prefix per test, deleted after; skipped when
Redis is absent).

The store runs on an injected clock (`Backend.advance` moves it); Redis keeps time with
its server clock, so there `advance` really sleeps and windows stay short.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from otp.risk.limits import Limiter
from otp.risk.limits.store import StoreLimiter
from otp.store import Store

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

# (backend, the `any_store` param it runs with: Redis ignores its store)
BACKENDS = [("sqlite", "sqlite"), ("postgresql", "postgresql"), ("redis", "sqlite")]


def redis_url() -> str:
    return os.environ.get("OTP_TEST_REDIS_URL", DEFAULT_REDIS_URL)


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class Backend:
    name: str
    limiter: Limiter
    url: str  # for other processes
    prefix: str  # Redis key prefix ("" for the store)
    clock: FakeClock | None  # None: the backend keeps real time

    async def advance(self, seconds: float) -> None:
        """Let `seconds` pass for the limiter."""
        if self.clock is None:
            await asyncio.sleep(seconds)
        else:
            self.clock.now += seconds


# Put on each module of the suite: `pytestmark = EVERY_BACKEND` (a parametrize mark, so it
# takes precedence over `any_store`'s own params).
EVERY_BACKEND = pytest.mark.parametrize(
    ("backend_name", "any_store"),
    BACKENDS,
    indirect=["any_store"],
    ids=[name for name, _ in BACKENDS],
)


async def _redis_unreachable(url: str) -> str | None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        await client.ping()  # type: ignore[misc]
    except Exception as exc:
        return f"Redis not reachable at {url.split('@')[-1]} ({type(exc).__name__})"
    finally:
        await client.aclose()
    return None


@pytest.fixture
async def backend(backend_name: str, any_store: Store) -> AsyncIterator[Backend]:
    if backend_name != "redis":
        clock = FakeClock()
        limiter = StoreLimiter(any_store, clock=clock)
        yield Backend(backend_name, limiter, any_store.url, "", clock)
        await limiter.close()
        return
    url = redis_url()
    reason = await _redis_unreachable(url)
    if reason is not None:
        pytest.skip(reason)
    import redis.asyncio as aioredis

    from otp.risk.limits.redis import RedisLimiter

    prefix = f"otp-test-{uuid.uuid4().hex[:12]}:"
    redis_limiter = RedisLimiter(url, prefix=prefix)
    try:
        yield Backend("redis", redis_limiter, url, prefix, None)
    finally:
        await redis_limiter.close()
        client = aioredis.Redis.from_url(url)
        try:
            keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()
