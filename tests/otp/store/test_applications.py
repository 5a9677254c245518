"""Applications and API keys in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import pytest
from pydantic import ValidationError

from otp.applications.keys import APPLICATION_ID_RE, KEY_ID_RE, hash_api_key
from otp.applications.model import ApplicationDefaults, DefaultPlanStep
from otp.domain import Channel, CodeType, Mode
from otp.store import ApiKey, Store, utcnow
from otp.store.applications import (
    ApplicationNotFoundError,
    create_api_key,
    create_application,
    ensure_default_application,
    find_api_key,
    get_application,
    list_api_keys,
    list_applications,
    revoke_api_key,
    touch_api_key,
    update_application,
)

KEY_RE = re.compile(r"^otp_(test|live)_[0-9A-Za-z]{43}$")


def test_defaults_are_validated_against_the_domain_bounds() -> None:
    bad_defaults: list[dict[str, object]] = [
        {"code_length": 3},
        {"code_length": 11},
        {"ttl_s": 10},
        {"max_attempts": 0},
        {"locale": "not a locale"},
        {"channels": []},
        {"channels": [{"channel": "pigeon"}]},
        {"channels": [{"channel": "sms", "timeout_s": 1}]},
        {"web_domain": "https://bad"},
        {"unknown": 1},
    ]
    for bad in bad_defaults:
        with pytest.raises(ValidationError):
            ApplicationDefaults.model_validate(bad)
    ok = ApplicationDefaults.model_validate(
        {"channels": [{"channel": "sms"}, {"channel": "email", "timeout_s": 90}], "locale": "pt-BR"}
    )
    assert [s.channel for s in ok.plan_for(email=False)] == [Channel.SMS]
    assert [s.timeout_s for s in ok.plan_for(email=True)] == [90]


async def test_create_get_list_update_application(any_store: Store) -> None:
    defaults = ApplicationDefaults(
        channels=[DefaultPlanStep(channel=Channel.WHATSAPP, timeout_s=30)],
        code_length=8,
        code_type=CodeType.ALPHANUMERIC,
    )
    app = await create_application(
        any_store,
        name="Shop",
        brand="Acme",
        defaults=defaults,
        allowed_channels=[Channel.WHATSAPP, Channel.SMS],
    )
    assert APPLICATION_ID_RE.match(app.id) and app.id != "default"
    read = await get_application(any_store, application_id=app.id)
    assert read is not None
    assert read.defaults == defaults
    assert read.allowed_channels == [Channel.WHATSAPP, Channel.SMS]
    assert read.brand == "Acme"
    assert await get_application(any_store, application_id="app_" + "a" * 26) is None

    other = await create_application(any_store, name="Other")
    listed = await list_applications(any_store)
    assert [a.id for a in listed] == [app.id, other.id]
    page = await list_applications(any_store, limit=1, after=app.id)
    assert [a.id for a in page] == [other.id]

    updated = await update_application(
        any_store, application_id=app.id, brand="Acme Inc", defaults=ApplicationDefaults(ttl_s=120)
    )
    assert updated is not None
    assert (updated.name, updated.brand, updated.defaults.ttl_s) == ("Shop", "Acme Inc", 120)
    assert updated.defaults.code_length is None  # defaults are replaced as a whole
    assert updated.allowed_channels == [Channel.WHATSAPP, Channel.SMS]
    assert updated.updated_at >= app.updated_at
    assert await update_application(any_store, application_id="app_nope", name="x") is None


async def test_default_plan_must_use_allowed_channels(any_store: Store) -> None:
    with pytest.raises(ValidationError):
        await create_application(
            any_store,
            name="x",
            defaults=ApplicationDefaults(channels=[DefaultPlanStep(channel=Channel.VOICE)]),
            allowed_channels=[Channel.SMS],
        )
    app = await create_application(
        any_store,
        name="y",
        defaults=ApplicationDefaults(channels=[DefaultPlanStep(channel=Channel.SMS)]),
    )
    with pytest.raises(ValidationError):
        await update_application(any_store, application_id=app.id, allowed_channels=[Channel.EMAIL])


async def test_key_lifecycle_stores_only_the_hash(any_store: Store) -> None:
    app = await create_application(any_store, name="Keys")
    created = await create_api_key(any_store, application_id=app.id, mode=Mode.LIVE, name="prod")
    assert KEY_RE.match(created.key) and created.key.startswith("otp_live_")
    public = created.api_key
    assert KEY_ID_RE.match(public.id)
    assert public.hint == f"otp_live_…{created.key[-4:]}"
    assert "key_hash" not in public.model_dump()
    async with any_store.session() as session:
        row = await session.get(ApiKey, public.id)
    assert row is not None and row.key_hash == hash_api_key(created.key)
    assert created.key not in repr(row)

    found = await find_api_key(any_store, key_hash=hash_api_key(created.key))
    assert found is not None
    assert (found.key_id, found.mode, found.application.id) == (public.id, Mode.LIVE, app.id)
    assert await find_api_key(any_store, key_hash=hash_api_key(created.key + "x")) is None

    test_key = await create_api_key(any_store, application_id=app.id, mode=Mode.TEST)
    listed = await list_api_keys(any_store, application_id=app.id)
    assert [k.id for k in listed] == [public.id, test_key.api_key.id]
    assert all("key_hash" not in k.model_dump() for k in listed)

    revoked = await revoke_api_key(any_store, key_id=public.id, application_id=app.id)
    assert revoked is not None and revoked.revoked_at is not None
    assert await find_api_key(any_store, key_hash=hash_api_key(created.key)) is None
    again = await revoke_api_key(any_store, key_id=public.id)
    assert again is not None and again.revoked_at == revoked.revoked_at  # first time kept
    active = await list_api_keys(any_store, application_id=app.id, include_revoked=False)
    assert [k.id for k in active] == [test_key.api_key.id]

    other = await create_application(any_store, name="Other")
    assert (
        await revoke_api_key(any_store, key_id=test_key.api_key.id, application_id=other.id) is None
    )
    assert await revoke_api_key(any_store, key_id="key_" + "a" * 26) is None
    with pytest.raises(ApplicationNotFoundError):
        await create_api_key(any_store, application_id="app_" + "b" * 26, mode=Mode.TEST)


async def test_touch_writes_at_most_once_a_minute(any_store: Store) -> None:
    app = await create_application(any_store, name="Touch")
    created = await create_api_key(any_store, application_id=app.id, mode=Mode.TEST)
    key_id = created.api_key.id
    now = utcnow()
    assert await touch_api_key(any_store, key_id=key_id, now=now)
    assert not await touch_api_key(any_store, key_id=key_id, now=now + timedelta(seconds=30))
    assert await touch_api_key(any_store, key_id=key_id, now=now + timedelta(seconds=61))
    listed = await list_api_keys(any_store, application_id=app.id)
    assert listed[0].last_used_at is not None
    assert abs(listed[0].last_used_at - (now + timedelta(seconds=61))) < timedelta(seconds=1)


async def test_ensure_default_application_is_idempotent_and_race_safe(any_store: Store) -> None:
    # Two stores are two processes' connection pools on the same database.
    second = Store(any_store.url)
    try:
        results = await asyncio.gather(
            *(ensure_default_application(s, brand="Acme") for s in [any_store, second] * 4)
        )
    finally:
        await second.close()
    assert {r.id for r in results} == {"default"}
    assert len({r.created_at for r in results}) == 1
    listed = await list_applications(any_store)
    assert [a.id for a in listed] == ["default"]
    assert (await ensure_default_application(any_store)).brand == "Acme"
