"""The Redis backend's own behaviour: key layout, expiry, costs pruned with their hits."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from otp.risk.limits import Hit, Limit
from tests.otp.risk.limits.conftest import Backend

pytestmark = pytest.mark.parametrize(
    ("backend_name", "any_store"), [("redis", "sqlite")], indirect=["any_store"], ids=["redis"]
)


async def test_keys_expire_with_the_window(backend: Backend) -> None:
    limit = Hit("k", Limit("test", 5, 30))
    await backend.limiter.hit_all([limit], cost=2)
    await backend.limiter.incr("c", ttl_s=10)
    await backend.limiter.incr("plain")
    client = aioredis.Redis.from_url(backend.url)
    try:
        p = backend.prefix
        assert 29_000 < await client.pttl(f"{p}rl:k") <= 30_000
        assert 29_000 < await client.pttl(f"{p}rc:k") <= 30_000
        assert 9_000 < await client.pttl(f"{p}ct:c") <= 10_000
        assert await client.ttl(f"{p}ct:plain") == -1
    finally:
        await client.aclose()


async def test_costs_leave_with_their_hits(backend: Backend) -> None:
    limit = Hit("k", Limit("test", 5, 1))
    await backend.limiter.hit_all([limit], cost=4, member="m")
    assert not (await backend.limiter.hit_all([limit], cost=2))[0].allowed
    await asyncio.sleep(0.6)
    await backend.limiter.hit_all([limit], cost=1)
    await asyncio.sleep(0.5)  # the cost-4 hit has left; the cost-1 one has not
    [decision] = await backend.limiter.hit_all([limit], cost=3)
    assert decision.allowed and decision.remaining == 1
    client = aioredis.Redis.from_url(backend.url)
    try:
        costs = await client.hgetall(f"{backend.prefix}rc:k")  # type: ignore[misc]
        assert costs == {next(iter(costs)): b"3"}  # the cost-4 member's entry was pruned
    finally:
        await client.aclose()
