"""The store backend's own behaviour, on SQLite and PostgreSQL: what its rows look like,
pruning and purging, member markers expiring with the window, long keys."""

from __future__ import annotations

from sqlalchemy import func, select

from otp.risk.limits import Hit, Limit
from otp.risk.limits.store import StoreLimiter, purge
from otp.store import Store
from otp.store.tables import Counter, RateHit
from tests.otp.risk.limits.conftest import FakeClock


async def rows(store: Store, table: type[RateHit] | type[Counter]) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_reset_s_follows_the_oldest_hits(any_store: Store) -> None:
    clock = FakeClock()
    limiter = StoreLimiter(any_store, clock=clock)
    limit = Hit("k", Limit("test", 3, 10))
    for _ in range(3):
        assert (await limiter.hit_all([limit]))[0].allowed
        clock.now += 2  # hits at t, t+2, t+4
    clock.now -= 1  # t+5
    [refused] = await limiter.hit_all([limit])
    assert not refused.allowed and refused.reset_s == 5  # the hit at t leaves at t+10
    [refused] = await limiter.hit_all([limit], cost=2)
    assert not refused.allowed and refused.reset_s == 7  # two must leave: t+2 leaves at t+12
    clock.now += 5.5
    [decision] = await limiter.hit_all([limit])
    assert decision.allowed and decision.remaining == 0 and decision.reset_s == 2


async def test_refusal_writes_nothing_and_old_hits_are_pruned(any_store: Store) -> None:
    clock = FakeClock()
    limiter = StoreLimiter(any_store, clock=clock)
    full, free = Hit("full", Limit("a", 1, 60)), Hit("free", Limit("b", 5, 60))
    assert (await limiter.hit_all([full]))[0].allowed
    assert not all(d.allowed for d in await limiter.hit_all([full, free], member="m"))
    assert await rows(any_store, RateHit) == 1 and await rows(any_store, Counter) == 0
    clock.now += 61
    assert all(d.allowed for d in await limiter.hit_all([full, free]))
    assert await rows(any_store, RateHit) == 2  # the first hit of "full" was pruned


async def test_member_is_forgotten_with_its_window(any_store: Store) -> None:
    clock = FakeClock()
    limiter = StoreLimiter(any_store, clock=clock)
    limit = Hit("k", Limit("test", 5, 60))
    assert (await limiter.hit_all([limit], member="m"))[0].remaining == 4
    clock.now += 59
    assert (await limiter.hit_all([limit], member="m"))[0].remaining == 4
    clock.now += 2  # the first hit left the window, and its member with it
    assert (await limiter.hit_all([limit], member="m"))[0].remaining == 4
    assert await rows(any_store, RateHit) == 1 and await rows(any_store, Counter) == 1


async def test_purge(any_store: Store) -> None:
    clock = FakeClock()
    limiter = StoreLimiter(any_store, clock=clock)
    await limiter.hit_all([Hit("old", Limit("test", 5, 60))], member="m")
    await limiter.incr("short", ttl_s=30)
    await limiter.incr("forever")
    clock.now += 100
    await limiter.hit_all([Hit("new", Limit("test", 5, 60))])
    await limiter.incr("long", ttl_s=3600)
    # The old hit, its member marker and the expired counter go; the rest stays.
    assert await purge(any_store, older_than_s=60, clock=clock) == 3
    assert await rows(any_store, RateHit) == 1 and await rows(any_store, Counter) == 2
    assert await limiter.get("forever") == 1 and await limiter.get("long") == 1


async def test_long_keys(any_store: Store) -> None:
    limiter = StoreLimiter(any_store, clock=FakeClock())
    long_a, long_b = "a" * 300, "a" * 299 + "b"  # same head, different keys
    assert (await limiter.hit_all([Hit(long_a, Limit("test", 1, 60))], member="x" * 500))[0].allowed
    assert (await limiter.hit_all([Hit(long_b, Limit("test", 1, 60))]))[0].allowed
    assert not (await limiter.hit_all([Hit(long_a, Limit("test", 1, 60))]))[0].allowed
    assert await limiter.incr(long_a) == 1 and await limiter.incr(long_b) == 1
    assert await limiter.get(long_a) == 1
