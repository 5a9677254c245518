"""The admin services without a server: applications, lockouts, the safe list, endpoint URLs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from api.auth import ApiKeyAuthenticator
from api.problems import (
    ApiKeyNotFound,
    ApplicationNotFound,
    InvalidRequest,
    LockoutNotFound,
    SafeListEntryNotFound,
)
from api.schemas.lockouts import SafeListAdd
from api.services import applications, lockouts, safe_list, webhook_endpoints
from api.services.risk_caches import RiskCaches
from otp.domain import Mode
from otp.risk.limits.store import StoreLimiter
from otp.risk.policy import RiskSettings, failed_checks_key
from otp.settings import Secrets, Settings
from otp.store import Store
from otp.store.applications import create_application
from otp.store.events import destination_hash

PHONE = "+14155550123"


@pytest.fixture
async def limiter(store: Store) -> AsyncIterator[StoreLimiter]:
    limiter = StoreLimiter(store)
    yield limiter
    await limiter.close()


async def test_unknown_and_malformed_ids_are_404(store: Store, settings: Settings) -> None:
    with pytest.raises(ApplicationNotFound):
        applications.application_id_of("not an id")
    with pytest.raises(ApplicationNotFound):
        await applications.require_application(store, "app_" + "a" * 26)
    authenticator = ApiKeyAuthenticator.from_settings(settings)
    with pytest.raises(ApiKeyNotFound):
        await applications.revoke_key(store, authenticator, application_id="default", key_id="nope")


async def test_applications_page_on_from_the_last_id(store: Store) -> None:
    for name in ("a", "b", "c"):
        await create_application(store, name=name)
    first, after = await applications.list_applications(store, limit=2, after=None)
    assert len(first) == 2 and after == first[-1].id
    rest, last = await applications.list_applications(store, limit=2, after=after)
    assert len(rest) == 1 and last is None


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


async def test_a_safe_list_change_clears_the_cache(store: Store, secrets: Secrets) -> None:
    app = await create_application(store, name="a")
    caches = RiskCaches()
    scope = (app.id, "test")
    assert await caches.safe_hashes(store, scope) == frozenset()
    body = SafeListAdd(to=PHONE, mode=Mode.TEST, note=" QA ")
    entry = await safe_list.add_entry(
        store, caches, secret=secrets.code_secret, application_id=app.id, body=body, added_by="ops"
    )
    assert (entry.to_masked, entry.note, entry.added_by) == ("+1********23", "QA", "ops")
    assert await caches.safe_hashes(store, scope) == {destination_hash(secrets.code_secret, PHONE)}
    again = await safe_list.add_entry(
        store, caches, secret=secrets.code_secret, application_id=app.id, body=body, added_by="x"
    )
    assert again.id == entry.id  # already on the list: the entry in force

    removed = await safe_list.remove_entry(
        store, caches, application_id=app.id, entry_id=entry.id, removed_by="ops"
    )
    assert removed.removed_by == "ops"
    assert await caches.safe_hashes(store, scope) == frozenset()
    with pytest.raises(SafeListEntryNotFound):
        await safe_list.remove_entry(
            store, caches, application_id=app.id, entry_id="nope", removed_by="ops"
        )


async def test_live_endpoints_must_be_https() -> None:
    url = "http://localhost:8080/hooks"
    assert await webhook_endpoints.checked_url(url, Mode.TEST) == url
    with pytest.raises(InvalidRequest) as raised:
        await webhook_endpoints.checked_url(url, Mode.LIVE)
    assert raised.value.extensions["errors"][0]["type"] == "unsafe_url"
