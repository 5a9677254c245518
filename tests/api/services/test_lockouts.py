"""Lifting a lockout given the destination in clear."""

from __future__ import annotations

import pytest

from api.problems import InvalidRequest, LockoutNotFound
from api.services import lockouts
from otp.domain import Mode
from otp.risk.limits.store import StoreLimiter
from otp.risk.policy import RiskSettings, failed_checks_key
from otp.settings import Secrets
from otp.store import Store
from otp.store.applications import create_application
from otp.store.events import destination_hash

PHONE = "+14155550123"


async def test_unlock_resets_the_counter_of_a_locked_destination(
    store: Store, limiter: StoreLimiter, secrets: Secrets
) -> None:
    app = await create_application(store, name="a", risk=RiskSettings(max_failed_checks=2))

    async def unlock(to: str, mode: Mode | None) -> tuple[str, list[lockouts.Lifted]]:
        return await lockouts.unlock_destination(
            store,
            limiter,
            secret=secrets.code_secret,
            application_id=app.id,
            to=to,
            mode=mode,
            lifted_by="ops",
        )

    with pytest.raises(LockoutNotFound):
        await unlock(PHONE, None)
    with pytest.raises(InvalidRequest):
        await unlock("nobody", None)

    key = failed_checks_key(app.id, Mode.LIVE, destination_hash(secrets.code_secret, PHONE))
    for _ in range(2):
        await limiter.incr(key, ttl_s=3600)
    to, lifted = await unlock("+1 415 555 0123", Mode.LIVE)
    assert to == "+1********23"
    assert [(item.mode, item.failed_count, item.lockout) for item in lifted] == [
        (Mode.LIVE, 2, None)
    ]
    assert await limiter.get(key) == 0
