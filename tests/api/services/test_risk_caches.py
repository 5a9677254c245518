"""The per-process caches creates read the risk blocks and the safe list through."""

from __future__ import annotations

import pytest

from api.services.risk_caches import RiskCaches, ScopeCache
from otp.store import Store, risk_blocks


async def test_a_value_is_loaded_once_per_ttl_and_again_after_clear() -> None:
    loads: list[int] = []

    async def load() -> int:
        loads.append(1)
        return len(loads)

    cache = ScopeCache[int](60.0)
    assert await cache.get(("app", "test"), load) == 1
    assert await cache.get(("app", "test"), load) == 1
    assert await cache.get(("app", "live"), load) == 2  # another scope, its own value
    cache.clear()
    assert await cache.get(("app", "test"), load) == 3


async def test_an_expired_value_is_loaded_again() -> None:
    values = iter([1, 2])

    async def load() -> int:
        return next(values)

    cache = ScopeCache[int](0.0)
    assert [await cache.get(("a", "m"), load), await cache.get(("a", "m"), load)] == [1, 2]


async def test_a_full_cache_starts_over() -> None:
    async def load() -> str:
        return "v"

    cache = ScopeCache[str](60.0, max_size=2)
    for name in ("a", "b", "c"):
        await cache.get((name, "test"), load)
    assert len(cache._entries) == 1


@pytest.mark.parametrize("clear", [False, True])
async def test_blocks_are_cached_until_cleared(store: Store, clear: bool) -> None:
    caches = RiskCaches()
    assert await caches.active_blocks(store, ("app_x", "test")) == []
    await risk_blocks.create_block(
        store,
        application_id="app_x",
        mode="test",
        scope="country",
        value="US",
        reason="r",
        automatic=False,
    )
    if clear:
        caches.blocks.clear()
    found = await caches.active_blocks(store, ("app_x", "test"))
    assert [b.value for b in found] == (["US"] if clear else [])
