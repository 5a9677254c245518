"""Risk blocks in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from otp.store import Store, utcnow
from otp.store.risk_blocks import (
    BLOCK_ID_RE,
    BlockScope,
    count_automatic_blocks,
    create_block,
    find_active_block,
    get_block,
    is_active,
    last_block_end,
    lift_block,
    list_active_blocks,
    list_blocks,
    new_block_id,
    normalize_value,
)

APP = "app_one"


def test_ids_and_values_have_their_formats() -> None:
    ids = {new_block_id() for _ in range(200)}
    assert len(ids) == 200 and all(BLOCK_ID_RE.match(i) for i in ids)
    assert normalize_value("country", " us ") == "US"
    assert normalize_value(BlockScope.PREFIX, "+1 415-555") == "+1415555"
    for scope, bad in [
        ("country", "USA"),
        ("country", "1A"),
        ("prefix", "1415555"),
        ("prefix", "+141"),
        ("prefix", "+0415555"),
        ("prefix", "+1415555012345678"),
    ]:
        with pytest.raises(ValueError):
            normalize_value(scope, bad)
    with pytest.raises(ValueError):
        normalize_value("region", "US")


async def test_create_find_and_lift(any_store: Store) -> None:
    block = await create_block(
        any_store,
        application_id=APP,
        mode="live",
        scope="prefix",
        value="+1415555",
        reason="pumping",
        automatic=True,
        duration_s=3600,
    )
    assert BLOCK_ID_RE.match(block.id) and block.level == 1 and block.expires_at is not None
    assert (block.expires_at - block.created_at) == timedelta(hours=1)

    async def find(
        country: str | None, prefix: str | None, *, app: str = APP, mode: str = "live"
    ) -> str | None:
        found = await find_active_block(
            any_store, application_id=app, mode=mode, country=country, prefix=prefix
        )
        return found.id if found else None

    assert await find("US", "+1415555") == block.id
    assert await find(None, "+14155559") == block.id  # a longer prefix is inside the range
    assert await find("US", "+1415556") is None
    assert await find("US", "+1415") is None  # a shorter one is not
    assert await find("US", "+1415555", mode="test") is None  # other mode
    assert await find("US", "+1415555", app="app_two") is None  # other application
    assert await find(None, None) is None

    country = await create_block(
        any_store,
        application_id=APP,
        mode="live",
        scope="country",
        value="gb",
        reason="manual",
        automatic=False,
    )
    assert country.value == "GB" and country.expires_at is None
    assert await find("GB", "+4477009") == country.id
    # Both match: the one without an expiry wins.
    assert await find("GB", "+1415555") == country.id

    lifted = await lift_block(any_store, block_id=country.id, lifted_by="ops@example.com")
    assert lifted is not None and lifted.lifted_at is not None and not is_active(lifted)
    assert lifted.lifted_by == "ops@example.com"
    assert await find("GB", "+4477009") is None
    again = await lift_block(any_store, block_id=country.id, lifted_by="someone else")
    assert again is not None and again.lifted_by == "ops@example.com"  # unchanged
    assert await lift_block(any_store, block_id="blk_missing", lifted_by="x") is None
    assert (
        await lift_block(any_store, block_id=block.id, lifted_by="x", application_id="app_two")
        is None
    )
    assert (await get_block(any_store, block_id=block.id, application_id=APP)) is not None
    assert (await get_block(any_store, block_id=block.id, application_id="app_two")) is None


async def test_expiry_lists_and_escalation_counts(any_store: Store) -> None:
    now = utcnow()
    old = await create_block(
        any_store,
        application_id=APP,
        mode="test",
        scope="prefix",
        value="+1415555",
        reason="first",
        automatic=True,
        duration_s=60,
        now=now - timedelta(hours=2),
    )
    second = await create_block(
        any_store,
        application_id=APP,
        mode="test",
        scope="prefix",
        value="+1415555",
        reason="second",
        automatic=True,
        level=2,
        duration_s=6 * 3600,
        now=now - timedelta(minutes=1),
    )
    manual = await create_block(
        any_store,
        application_id=APP,
        mode="test",
        scope="country",
        value="US",
        reason="manual",
        automatic=False,
    )
    await create_block(
        any_store,
        application_id=APP,
        mode="live",
        scope="prefix",
        value="+1415555",
        reason="live one",
        automatic=True,
    )
    active = await list_active_blocks(any_store, application_id=APP, mode="test")
    assert [b.id for b in active] == [manual.id, second.id]  # newest first; `old` expired
    prefixes = await list_active_blocks(any_store, application_id=APP, mode="test", scope="prefix")
    assert [b.id for b in prefixes] == [second.id]
    recent = await list_blocks(
        any_store, application_id=APP, mode="test", since=now - timedelta(hours=1)
    )
    assert [b.id for b in recent] == [manual.id, second.id]
    everything = await list_blocks(any_store, application_id=APP, mode="test")
    assert [b.id for b in everything] == [manual.id, second.id, old.id]
    assert len(await list_blocks(any_store, application_id=APP)) == 4

    counted = await count_automatic_blocks(
        any_store, application_id=APP, mode="test", scope="prefix", value="+1415555"
    )
    assert counted == 2
    assert (
        await count_automatic_blocks(
            any_store,
            application_id=APP,
            mode="test",
            scope="prefix",
            value="+1415555",
            since=now - timedelta(hours=1),
        )
        == 1
    )
    # Manual blocks do not escalate automatic ones.
    assert (
        await count_automatic_blocks(
            any_store, application_id=APP, mode="test", scope="country", value="US"
        )
        == 0
    )

    # The latest block of a scope: active -> no end yet; lifted -> when it was lifted.
    assert (
        await last_block_end(
            any_store, application_id=APP, mode="test", scope="prefix", value="+1415555"
        )
        is None
    )
    lifted = await lift_block(any_store, block_id=second.id, lifted_by="ops")
    assert lifted is not None
    ended = await last_block_end(
        any_store, application_id=APP, mode="test", scope="prefix", value="+1415555"
    )
    assert ended == lifted.lifted_at
    # Lifting does not forget it for escalation.
    assert (
        await count_automatic_blocks(
            any_store, application_id=APP, mode="test", scope="prefix", value="+1415555"
        )
        == 2
    )
    assert (
        await last_block_end(
            any_store, application_id=APP, mode="test", scope="prefix", value="+1415999"
        )
        is None
    )


def test_covers_follows_the_same_rule_as_the_store_query() -> None:
    from otp.store.risk_blocks import covers
    from otp.store.tables import RiskBlock

    def block(scope: str, value: str) -> RiskBlock:
        return RiskBlock(
            id="blk_x", application_id="a", mode="test", scope=scope, value=value, reason="r"
        )

    assert covers(block("prefix", "+1415"), country="US", prefix="+1415555")
    assert covers(block("prefix", "+1415555"), country="US", prefix="+1415555")
    assert not covers(block("prefix", "+14155556"), country="US", prefix="+1415555")
    assert not covers(block("prefix", "+1415"), country="US", prefix=None)
    assert covers(block("country", "US"), country="US", prefix=None)
    assert not covers(block("country", "GB"), country="US", prefix="+1415555")
