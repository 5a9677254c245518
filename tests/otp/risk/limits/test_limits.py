"""The limits contract, on every backend (see conftest): exact at the threshold under
concurrency (one event loop and several processes), all-or-nothing, sliding windows,
`reset_s`, idempotent members, costs, peeking, counters."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from otp.risk.limits import Decision, Hit, Limit
from tests.otp.risk.limits.conftest import EVERY_BACKEND, Backend

pytestmark = EVERY_BACKEND
ROOT = Path(__file__).resolve().parents[4]


def hit(key: str, limit: int, window_s: int = 60, name: str = "test") -> Hit:
    return Hit(key, Limit(name, limit, window_s))


def allowed(decisions: list[Decision]) -> bool:
    return all(d.allowed for d in decisions)


async def test_concurrent_hits_admit_exactly_the_limit(backend: Backend) -> None:
    limiter = backend.limiter
    results = await asyncio.gather(*(limiter.hit_all([hit("k", 5)]) for _ in range(6)))
    assert sum(allowed(r) for r in results) == 5
    remaining = sorted(r[0].remaining for r in results if allowed(r))
    assert remaining == [0, 1, 2, 3, 4]
    refused = [r[0] for r in results if not allowed(r)]
    assert refused[0].remaining == 0 and refused[0].reset_s > 0


async def test_processes_admit_exactly_the_limit(backend: Backend) -> None:
    processes, per_process, limit = 4, 5, 7
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.helpers.limit_hitter",
            backend.name,
            backend.url,
            backend.prefix,
            "shared",
            str(limit),
            "60",
            str(per_process),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(processes)
    ]
    for proc in procs:  # every process has connected: start them together
        assert proc.stdout is not None
        line = await proc.stdout.readline()
        if line != b"ready\n":
            _, err = await proc.communicate()
            pytest.fail(f"a process did not start: {err.decode()}")
    outputs = await asyncio.gather(*(p.communicate(b"go\n") for p in procs))
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()
    counts = [int(out) for out, _ in outputs]
    assert sum(counts) == limit, counts
    # The store's clock here is the injected one, near the real time the processes used.
    [peeked] = await backend.limiter.peek([hit("shared", limit)])
    assert not peeked.allowed and peeked.remaining == 0


async def test_all_or_nothing_across_keys(backend: Backend) -> None:
    limiter = backend.limiter
    assert allowed(await limiter.hit_all([hit("full", 1)]))
    decisions = await limiter.hit_all([hit("full", 1, name="a"), hit("free", 3, name="b")])
    assert [d.allowed for d in decisions] == [False, True]
    assert [d.limit.name for d in decisions] == ["a", "b"]
    assert decisions[1].remaining == 3  # nothing was taken from the free limit
    [free] = await limiter.peek([hit("free", 3)])
    assert free.allowed and free.remaining == 2  # its next hit would still be the first
    decisions = await limiter.hit_all([hit("free", 3), hit("other", 2)])
    assert allowed(decisions) and [d.remaining for d in decisions] == [2, 1]


async def test_window_slides(backend: Backend) -> None:
    limiter = backend.limiter
    limit = hit("slide", 2, window_s=1)
    assert allowed(await limiter.hit_all([limit]))
    await backend.advance(0.5)
    assert allowed(await limiter.hit_all([limit]))
    [refused] = await limiter.hit_all([limit])
    assert not refused.allowed and refused.reset_s == 1
    await backend.advance(0.6)  # the first hit has left the window, the second has not
    [decision] = await limiter.hit_all([limit])
    assert decision.allowed and decision.remaining == 0
    assert not allowed(await limiter.hit_all([limit]))


async def test_reset_s_waits_for_room(backend: Backend) -> None:
    limiter = backend.limiter
    limit = hit("reset", 3, window_s=10)
    first = await limiter.hit_all([limit])
    assert first[0].remaining == 2 and first[0].reset_s == 0
    assert allowed(await limiter.hit_all([limit]))
    [last] = await limiter.hit_all([limit])
    assert last.allowed and last.remaining == 0 and last.reset_s == 10
    [refused] = await limiter.hit_all([limit])
    assert not refused.allowed and refused.reset_s == 10


async def test_member_counts_once(backend: Backend) -> None:
    limiter = backend.limiter
    limit = hit("member", 2)
    one = await limiter.hit_all([limit], member="delivery-1")
    again = await limiter.hit_all([limit], member="delivery-1")
    assert allowed(one) and allowed(again)
    assert one[0].remaining == 1 and again[0].remaining == 1
    assert allowed(await limiter.hit_all([limit], member="delivery-2"))
    # Full now, but a member already recorded is still allowed (a retry), a new one is not.
    assert allowed(await limiter.hit_all([limit], member="delivery-1"))
    assert not allowed(await limiter.hit_all([limit], member="delivery-3"))
    assert not allowed(await limiter.hit_all([limit]))


async def test_concurrent_member_counts_once(backend: Backend) -> None:
    limiter = backend.limiter
    results = await asyncio.gather(
        *(limiter.hit_all([hit("cm", 3)], member="same") for _ in range(5))
    )
    assert all(allowed(r) for r in results)
    [peeked] = await limiter.peek([hit("cm", 3)])
    assert peeked.remaining == 1  # after one more: one hit recorded in all


async def test_member_charges_only_keys_without_it(backend: Backend) -> None:
    limiter = backend.limiter
    assert allowed(await limiter.hit_all([hit("a", 1)], member="m"))
    decisions = await limiter.hit_all([hit("a", 1), hit("b", 1)], member="m")
    assert allowed(decisions)  # "a" already holds m: not charged again although full
    assert [d.remaining for d in decisions] == [0, 0]
    assert not allowed(await limiter.hit_all([hit("b", 1)], member="other"))


async def test_cost(backend: Backend) -> None:
    limiter = backend.limiter
    limit = hit("cost", 5, window_s=30)
    [first] = await limiter.hit_all([limit], cost=3)
    assert first.allowed and first.remaining == 2 and first.reset_s == 30  # no room for 3 more
    [refused] = await limiter.hit_all([limit], cost=3)
    assert not refused.allowed and refused.remaining == 2 and refused.reset_s == 30
    [fits] = await limiter.hit_all([limit], cost=2)
    assert fits.allowed and fits.remaining == 0
    [too_big] = await limiter.hit_all([hit("cost-big", 5, window_s=30)], cost=6)
    assert not too_big.allowed and too_big.remaining == 5 and too_big.reset_s == 30
    with pytest.raises(ValueError):
        await limiter.hit_all([limit], cost=0)


async def test_peek_records_nothing(backend: Backend) -> None:
    limiter = backend.limiter
    limit = hit("peek", 2)
    for _ in range(5):
        peeked = await limiter.peek([limit])
        assert allowed(peeked) and peeked[0].remaining == 1
    assert await limiter.hit_all([limit]) == peeked
    assert allowed(await limiter.hit_all([limit]))
    [full] = await limiter.peek([limit])
    assert not full.allowed and full.remaining == 0 and full.reset_s > 0
    assert await limiter.peek([]) == [] and await limiter.hit_all([]) == []


async def test_one_key_under_two_limits_records_one_hit(backend: Backend) -> None:
    limiter = backend.limiter
    minute, hour = hit("two", 2, 60, "minute"), hit("two", 5, 3600, "hour")
    decisions = await limiter.hit_all([minute, hour])
    assert [d.remaining for d in decisions] == [1, 4]
    decisions = await limiter.hit_all([minute, hour])
    assert [d.remaining for d in decisions] == [0, 3]
    decisions = await limiter.hit_all([minute, hour])
    assert [d.allowed for d in decisions] == [False, True]


async def test_counters(backend: Backend) -> None:
    limiter = backend.limiter
    assert await limiter.get("fails") == 0
    assert [await limiter.incr("fails") for _ in range(3)] == [1, 2, 3]
    assert await limiter.get("fails") == 3
    await limiter.reset("fails")
    assert await limiter.get("fails") == 0
    assert await limiter.incr("fails") == 1
    await limiter.reset("absent")  # harmless


async def test_concurrent_incr_loses_nothing(backend: Backend) -> None:
    limiter = backend.limiter
    values = await asyncio.gather(*(limiter.incr("many", ttl_s=60) for _ in range(10)))
    assert sorted(values) == list(range(1, 11))
    assert await limiter.get("many") == 10


async def test_counter_expiry(backend: Backend) -> None:
    limiter = backend.limiter
    assert await limiter.incr("ttl", ttl_s=1) == 1
    assert await limiter.incr("ttl", ttl_s=1) == 2  # renews the expiry
    assert await limiter.incr("keep") == 1
    await backend.advance(1.1)
    assert await limiter.get("ttl") == 0
    assert await limiter.incr("ttl", ttl_s=1) == 1  # an expired counter starts again
    assert await limiter.get("keep") == 1  # no ttl: kept
