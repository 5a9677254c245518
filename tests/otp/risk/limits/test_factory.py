"""Choosing the limits backend from the settings."""

from __future__ import annotations

import pytest

from otp.risk.limits.factory import build_limiter
from otp.risk.limits.redis import RedisLimiter
from otp.risk.limits.store import StoreLimiter
from otp.settings import ConfigError, Settings
from otp.store import Store


async def test_store_by_default(store: Store) -> None:
    assert isinstance(build_limiter(Settings(), store), StoreLimiter)


async def test_redis_from_the_environment(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTP_LIMITS_BACKEND", "redis")
    monkeypatch.setenv("OTP_REDIS_URL", "redis://127.0.0.1:6379/0")
    limiter = build_limiter(Settings(), store)
    assert isinstance(limiter, RedisLimiter)
    await limiter.close()


async def test_redis_needs_a_url(store: Store) -> None:
    with pytest.raises(ConfigError, match="OTP_REDIS_URL"):
        build_limiter(Settings(limits_backend="redis"), store)
