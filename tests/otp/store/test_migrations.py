"""Migrations: the same revisions build the same schema on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from otp.migrations import head_revision
from otp.store import Store, tables


async def _tables(store: Store) -> set[str]:
    async with store.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def test_migrate_reaches_head_with_every_table(any_store: Store) -> None:
    await any_store.migrate()  # a second run is a no-op
    async with any_store.engine.connect() as conn:
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    assert version == head_revision()
    assert set(SQLModel.metadata.tables) <= await _tables(any_store)


async def test_schema_matches_the_models(any_store: Store) -> None:
    """No drift: autogenerate against the migrated database finds nothing to do."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    def diff(conn: object) -> list[object]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})  # type: ignore[arg-type]
        return list(compare_metadata(ctx, SQLModel.metadata))

    async with any_store.engine.connect() as conn:
        changes = await conn.run_sync(diff)
    assert tables.Application.__tablename__ == "applications"
    assert changes == []


async def test_concurrent_migrators_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'race.db'}"
    stores = [Store(url) for _ in range(4)]
    await asyncio.gather(*(s.migrate() for s in stores))
    for s in stores:
        await s.close()
    with sqlite3.connect(tmp_path / "race.db") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (head_revision(),)
        ]


async def test_a_database_from_the_first_release_is_adopted(tmp_path: Path) -> None:
    """The first release created sandbox_messages without migrations; it keeps its rows."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE sandbox_messages (id INTEGER PRIMARY KEY, message_id VARCHAR(64) UNIQUE,"
            " verification_id VARCHAR(64), application_id VARCHAR(64), channel VARCHAR(16),"
            ' "to" VARCHAR(320), subject VARCHAR(512), body VARCHAR, created_at DATETIME,'
            " idempotency_key VARCHAR(255) UNIQUE)"
        )
        conn.execute(
            "INSERT INTO sandbox_messages VALUES (1, 'm1', 'ver_x', 'default', 'sms', '+1',"
            " '', 'hello', '2026-01-01 00:00:00', 'k1')"
        )
    store = Store(f"sqlite+aiosqlite:///{path}")
    await store.migrate()
    messages = await store.list_sandbox_messages(application_id="default")
    await store.close()
    assert [m.message_id for m in messages] == ["m1"]


async def test_upgrading_a_populated_database_keeps_its_rows(
    any_store: Store, tmp_path: Path
) -> None:
    """0001 with an application in it, then head: the row survives with safe defaults."""
    from alembic import command

    from otp.migrations import alembic_config

    async with any_store.engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0001"))
        await conn.execute(
            text(
                "INSERT INTO applications (id, name, brand, defaults, allowed_channels,"
                " created_at, updated_at) VALUES ('app_old', 'Old', '', '{}', '[]',"
                " '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
    await any_store.migrate()
    async with any_store.engine.connect() as conn:
        risk = (
            await conn.execute(text("SELECT risk FROM applications WHERE id = 'app_old'"))
        ).scalar()
    assert risk in ({}, "{}")


async def test_0004_keeps_no_clear_range_and_rewrites_old_masks(any_store: Store) -> None:
    """Rows from 0002: clear ranges go (hash columns stay NULL, automatic range blocks are
    lifted and shortened, clear-range limiter keys deleted) and masks get the new form."""
    from alembic import command

    from otp.migrations import alembic_config

    snapshot = '{"channels": [{"channel": "sms", "to": "+1415*****23"}], "status": "pending"}'
    async with any_store.engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0002"))
        await conn.execute(
            text(
                "INSERT INTO verifications (id, application_id, mode, status, first_channel,"
                " channel, channels, country, prefix, to_masked, created_at, expires_at,"
                " updated_at, attempts_used, max_attempts, sends, wrong_checks, fallbacks,"
                " delivered, final, snapshot) VALUES ('ver_old', 'default', 'test', 'pending',"
                " 'sms', 'sms', '[\"sms\"]', 'US', '+1415555', '+1415*****23',"
                " '2026-01-01 00:00:00', '2026-01-01 00:10:00', '2026-01-01 00:00:00',"
                f" 0, 5, 1, 0, 0, false, false, '{snapshot}')"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO verification_events (verification_id, key, application_id, mode,"
                " type, occurred_at, recorded_at, to_masked, webhooks_dispatched) VALUES"
                " ('ver_old', 'k1', 'default', 'test', 'sent', '2026-01-01 00:00:00',"
                " '2026-01-01 00:00:00', '+4420******58', false)"
            )
        )
        for block_id, automatic in (("blk_auto", "true"), ("blk_manual", "false")):
            await conn.execute(
                text(
                    "INSERT INTO risk_blocks (id, application_id, mode, scope, value, reason,"
                    f" automatic, level, created_at) VALUES ('{block_id}', 'default', 'test',"
                    f" 'prefix', '+1415555', 'r', {automatic}, 1, '2026-01-01 00:00:00')"
                )
            )
        await conn.execute(
            text(
                "INSERT INTO rate_hits (key, at, cost) VALUES"
                " ('default:test:pfx:+1415555', 1.0, 1), ('default:test:cc:US', 1.0, 1)"
            )
        )
    await any_store.migrate()
    async with any_store.engine.connect() as conn:
        record = (
            await conn.execute(text("SELECT to_masked, prefix_hash, snapshot FROM verifications"))
        ).one()
        event = (await conn.execute(text("SELECT to_masked FROM verification_events"))).scalar()
        found = (
            await conn.execute(
                text("SELECT id, value, value_hash, lifted_by FROM risk_blocks ORDER BY id")
            )
        ).all()
        keys = (await conn.execute(text("SELECT key FROM rate_hits"))).scalars().all()
    stored = record.snapshot if isinstance(record.snapshot, dict) else json.loads(record.snapshot)
    assert (record.to_masked, record.prefix_hash) == ("+1********23", None)
    assert stored["channels"][0]["to"] == "+1********23" and stored["status"] == "pending"
    assert event == "+44********58"
    assert [tuple(row) for row in found] == [
        ("blk_auto", "+1415", None, "migration 0004"),
        ("blk_manual", "+1415555", None, None),  # typed by an operator: kept as it is
    ]
    assert keys == ["default:test:cc:US"]


async def test_0012_turns_cost_units_into_money_caps(any_store: Store) -> None:
    """`daily_spend` (cost units, one SMS = 1) becomes `spend_caps.daily` at 0.05 a unit,
    per day whatever its window; `null` stays off; `channel_costs` goes; the other risk
    settings stay; the result is valid settings."""
    from alembic import command

    from otp.migrations import alembic_config
    from otp.risk.policy import RiskSettings

    old = {
        "app_units": {
            "daily_spend": {"limit": 20000, "window_s": 86400},
            "channel_costs": {"voice": 3},
            "max_failed_checks": 7,
        },
        "app_hourly": {"daily_spend": {"limit": 10, "window_s": 3600}},
        "app_off": {"daily_spend": None},
        "app_plain": {"per_ip": None},
    }
    async with any_store.engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0011"))
        for app_id, risk in old.items():
            await conn.execute(
                text(
                    "INSERT INTO applications (id, name, brand, defaults, allowed_channels, risk,"
                    " created_at, updated_at) VALUES (:id, 'Old', '', '{}', '[]', :risk,"
                    " '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
                ),
                {"id": app_id, "risk": json.dumps(risk)},
            )
    await any_store.migrate()
    async with any_store.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT id, risk FROM applications"))).all()
    risks = {i: (json.loads(r) if isinstance(r, str) else r) for i, r in rows if i in old}
    assert risks["app_units"] == {"max_failed_checks": 7, "spend_caps": {"daily": "1000.00"}}
    assert risks["app_hourly"] == {"spend_caps": {"daily": "12.00"}}  # 240 units a day
    assert risks["app_off"] == {"spend_caps": {"daily": None}}
    assert risks["app_plain"] == {"per_ip": None}
    for risk in risks.values():
        RiskSettings.of(risk)
    assert RiskSettings.of(risks["app_off"]).spend_caps.daily is None
    assert RiskSettings.of(risks["app_off"]).spend_caps.monthly == "20000.00"
