"""The limiter the settings ask for (OTP_LIMITS_BACKEND, OTP_REDIS_URL)."""

from __future__ import annotations

from otp.risk.limits import Limiter
from otp.settings import ConfigError, Settings
from otp.store import Store


def build_limiter(settings: Settings, store: Store) -> Limiter:
    """The store's limiter by default; Redis with OTP_LIMITS_BACKEND=redis and OTP_REDIS_URL."""
    if settings.limits_backend == "redis":
        if not settings.redis_url:
            raise ConfigError("OTP_LIMITS_BACKEND=redis needs OTP_REDIS_URL (redis://host:6379/0)")
        from otp.risk.limits.redis import RedisLimiter

        return RedisLimiter(settings.redis_url)
    from otp.risk.limits.store import StoreLimiter

    return StoreLimiter(store)
