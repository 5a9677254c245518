"""Budgets (`Limiter.charge`), on every backend: a total with a cap per period, exact
under concurrency, all or nothing across budgets, idempotent members, forced charges,
64-bit totals and the period's end as `reset_s`."""

from __future__ import annotations

import asyncio
import time

from otp.risk.limits import Budget, Decision, Limit
from tests.otp.risk.limits.conftest import EVERY_BACKEND, Backend

pytestmark = EVERY_BACKEND


def budget(key: str, cap: int, ends_in_s: float = 3600) -> Budget:
    return Budget(key, Limit("spend_daily", cap, 86_400), time.time() + ends_in_s)


def allowed(decisions: list[Decision]) -> bool:
    return all(d.allowed for d in decisions)


async def test_concurrent_charges_stop_exactly_at_the_cap(backend: Backend) -> None:
    limiter = backend.limiter
    results = await asyncio.gather(
        *(limiter.charge([budget("day", 50_000)], cost=8_300) for _ in range(8))
    )
    assert sum(allowed(r) for r in results) == 6  # 6 x 8 300 = 49 800
    refused = next(r[0] for r in results if not allowed(r))
    assert refused.remaining == 50_000 - 49_800
    assert 3500 <= refused.reset_s <= 3601


async def test_all_or_nothing_across_budgets(backend: Backend) -> None:
    limiter = backend.limiter
    day, month = budget("d", 10_000), budget("m", 1_000_000)
    assert allowed(await limiter.charge([day, month], cost=9_000))
    refused = await limiter.charge([day, month], cost=2_000)
    assert [d.allowed for d in refused] == [False, True]
    # Nothing was added to the monthly budget by the refused charge.
    after = await limiter.charge([month], cost=991_000)
    assert allowed(after) and after[0].remaining == 0


async def test_a_member_is_charged_once(backend: Backend) -> None:
    limiter = backend.limiter
    for _ in range(3):
        decisions = await limiter.charge([budget("once", 10_000)], cost=6_000, member="ver_a:1")
        assert allowed(decisions) and decisions[0].remaining == 4_000
    assert not allowed(await limiter.charge([budget("once", 10_000)], cost=6_000, member="b"))


async def test_force_counts_past_the_cap(backend: Backend) -> None:
    limiter = backend.limiter
    assert allowed(await limiter.charge([budget("f", 100)], cost=90))
    forced = await limiter.charge([budget("f", 100)], cost=50, force=True)
    assert allowed(forced) and forced[0].remaining == 0
    assert not allowed(await limiter.charge([budget("f", 100)], cost=1))


async def test_totals_are_64_bit(backend: Backend) -> None:
    limiter = backend.limiter
    big = budget("big", 20_000 * 1_000_000)  # 20 000.00 in micros: past a 32-bit integer
    for _ in range(3):
        assert allowed(await limiter.charge([big], cost=2_000_000_000))
    decisions = await limiter.charge([big], cost=1)
    assert decisions[0].remaining == 20_000_000_000 - 6_000_000_000 - 1
    assert await limiter.get("big") == 6_000_000_001


async def test_an_expired_period_starts_from_zero(backend: Backend) -> None:
    limiter = backend.limiter
    assert allowed(await limiter.charge([budget("old", 100, ends_in_s=1.0)], cost=100))
    await backend.advance(1.2)
    fresh = await limiter.charge([budget("old", 100)], cost=100)
    assert allowed(fresh)
