"""A failed-check counter that reaches the cap expires after `lockout_duration_s` on
every limiter backend (the lockout ends on its own), not the 30 days kept below the cap."""

from __future__ import annotations

from otp.risk.policy import FAILED_CHECKS_TTL_S, RiskSettings, note_check
from tests.otp.risk.limits.conftest import EVERY_BACKEND, Backend

pytestmark = EVERY_BACKEND

KEY = "app_x:test:fchk:0123456789abcdef"


async def _expiry_s(backend: Backend) -> float:
    """Seconds until the counter expires, as the backend keeps it."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(backend.url)
    try:
        return float(await client.pttl(f"{backend.prefix}ct:{KEY}")) / 1000
    finally:
        await client.aclose()


async def test_the_counter_at_the_cap_expires_after_the_lockout_duration(
    backend: Backend,
) -> None:
    risk = RiskSettings(max_failed_checks=3, lockout_duration_s=600)
    for _ in range(2):
        assert await note_check(backend.limiter, [KEY], approved=False, risk=risk) == []
    if backend.clock is None:
        assert await _expiry_s(backend) > FAILED_CHECKS_TTL_S - 60
    assert await note_check(backend.limiter, [KEY], approved=False, risk=risk) == [(KEY, 3)]
    assert await backend.limiter.get(KEY) >= risk.max_failed_checks
    if backend.clock is None:  # Redis keeps real time: read the expiry it holds
        assert 590 < await _expiry_s(backend) <= 600
        return
    await backend.advance(599)
    assert await backend.limiter.get(KEY) >= risk.max_failed_checks
    await backend.advance(2)
    assert await backend.limiter.get(KEY) == 0
