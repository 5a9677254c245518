"""Analytics aggregate in the database: exact over any volume, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, text

from otp.store import Store, VerificationRecord
from otp.store import records as store_records
from otp.store.records import percentile

APP = "app_analytics"
T0 = datetime(2026, 5, 1, 22, 30, tzinfo=UTC)
STATUSES = (
    "approved",
    "expired",
    "max_attempts_reached",
    "undeliverable",
    "canceled",
    "blocked",
    "pending",
)


def _rows(count: int, *, seed: int, start: int = 0, mode: str = "test") -> list[dict[str, Any]]:
    """Verification rows spread over 3 UTC days (straddling midnight), 3 channels, 3 countries."""
    rnd = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for i in range(start, start + count):
        status = rnd.choice(STATUSES)
        created = T0 + timedelta(seconds=rnd.randrange(0, 3 * 86_400))
        channel = rnd.choice(("sms", "email", "whatsapp"))
        rows.append(
            {
                "id": f"ver_{mode}_{i:07d}",
                "application_id": APP,
                "mode": mode,
                "status": status,
                "first_channel": channel,
                "channel": channel,
                "channels": [channel],
                "country": None if channel == "email" else rnd.choice(("US", "GB", "FR")),
                "to_masked": "",
                "created_at": created,
                "expires_at": created + timedelta(minutes=10),
                "updated_at": created,
                "attempts_used": rnd.randrange(0, 6),
                "max_attempts": 5,
                "sends": 1,
                "wrong_checks": rnd.randrange(0, 3),
                "fallbacks": rnd.choice((0, 0, 0, 1, 2)),
                "delivered": rnd.random() < 0.8,
                "time_to_verify_ms": rnd.randrange(1_000, 120_000)
                if status == "approved"
                else None,
                "final": True,
                "snapshot": {},
            }
        )
    return rows


async def _insert(store: Store, rows: list[dict[str, Any]]) -> None:
    async with store.engine.begin() as conn:
        for start in range(0, len(rows), 5_000):
            await conn.execute(insert(VerificationRecord), rows[start : start + 5_000])


def _expected(
    rows: list[dict[str, Any]], group_by: list[str]
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The same figures computed row by row in Python (the reference)."""
    grouped: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        values = {
            "day": row["created_at"].date().isoformat(),
            "channel": row["first_channel"],
            "country": row["country"],
        }
        grouped[tuple(values[name] for name in group_by)].append(row)
    out = {}
    for key, members in grouped.items():
        times = sorted(
            r["time_to_verify_ms"] for r in members if r["time_to_verify_ms"] is not None
        )
        statuses = [r["status"] for r in members]
        checks = sum(r["attempts_used"] for r in members)
        wrong = sum(r["wrong_checks"] for r in members)
        started = len(members)
        out[key] = {
            "started": started,
            "delivered": sum(r["delivered"] for r in members),
            "approved": statuses.count("approved"),
            "expired": statuses.count("expired"),
            "failed": statuses.count("undeliverable") + statuses.count("max_attempts_reached"),
            "canceled": statuses.count("canceled"),
            "blocked": statuses.count("blocked"),
            "pending": statuses.count("pending"),
            "fallback_rate": round(sum(r["fallbacks"] > 0 for r in members) / started, 4),
            "wrong_code_rate": round(wrong / checks, 4) if checks else None,
            "time_to_verify_p50_ms": percentile(times, 50),
            "time_to_verify_p95_ms": percentile(times, 95),
        }
    return out


FIGURES = (
    "started",
    "delivered",
    "approved",
    "expired",
    "failed",
    "canceled",
    "blocked",
    "pending",
    "fallback_rate",
    "wrong_code_rate",
    "time_to_verify_p50_ms",
    "time_to_verify_p95_ms",
)


async def _report(
    store: Store, start: datetime, end: datetime, group_by: list[str]
) -> tuple[store_records.Bucket, list[store_records.Bucket]]:
    return await store_records.analytics(
        store,
        application_id=APP,
        mode="test",
        created_from=start,
        created_to=end,
        group_by=group_by,
    )


def _figures(bucket: store_records.Bucket) -> dict[str, Any]:
    shown = bucket.as_dict()
    return {name: shown[name] for name in FIGURES}


async def test_every_figure_matches_a_row_by_row_reference(any_store: Store) -> None:
    rows = _rows(1_500, seed=7)
    await _insert(any_store, [*rows, *_rows(50, seed=8, start=10_000, mode="live")])
    for group_by in (["day"], ["channel", "country"], ["country", "day", "channel"]):
        total, buckets = await _report(any_store, T0, T0 + timedelta(days=4), group_by)
        expected = _expected(rows, group_by)
        assert _figures(total) == _expected(rows, [])[()]
        assert {tuple(b.key.values()): _figures(b) for b in buckets} == expected
        assert [tuple(b.key.values()) for b in buckets] == sorted(
            expected, key=lambda k: tuple(str(v) for v in k)
        )


async def test_days_are_utc_and_the_range_is_half_open(any_store: Store) -> None:
    rows = _rows(200, seed=3)
    await _insert(any_store, rows)
    cut = datetime(2026, 5, 2, 0, 0, tzinfo=UTC)
    total, by_day = await _report(any_store, cut, cut + timedelta(days=1), ["day"])
    inside = [r for r in rows if cut <= r["created_at"] < cut + timedelta(days=1)]
    assert total.started == len(inside) > 0
    assert [(b.key["day"], b.started) for b in by_day] == [("2026-05-02", len(inside))]


async def test_totals_are_exact_past_two_hundred_thousand_rows(store: Store) -> None:
    """The figures cover every verification in the range, however many (no row cap).

    The rows are generated by SQLite itself (a recursive CTE): row i is approved when
    i % 7 == 0 (time to verify 1000 + i % 5000 ms), its channel is sms, email or
    whatsapp by i % 3, and it was created i % 259 200 s after T0 (3 days)."""
    count = 200_250
    async with store.engine.begin() as conn:
        await conn.execute(
            text(
                """
                INSERT INTO verifications (id, application_id, mode, status, first_channel,
                    channel, channels, to_masked, created_at, expires_at, updated_at,
                    attempts_used, max_attempts, sends, wrong_checks, fallbacks, delivered,
                    time_to_verify_ms, final, snapshot)
                WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < :last)
                SELECT printf('ver_bulk_%07d', i), :app, 'test',
                    CASE WHEN i % 7 = 0 THEN 'approved' ELSE 'expired' END,
                    CASE i % 3 WHEN 0 THEN 'sms' WHEN 1 THEN 'email' ELSE 'whatsapp' END,
                    'sms', '["sms"]', '',
                    strftime('%Y-%m-%d %H:%M:%f', :t0, '+' || (i % 259200) || ' seconds') || '000',
                    :t0, :t0, 1, 5, 1, 0, 0, 1,
                    CASE WHEN i % 7 = 0 THEN 1000 + i % 5000 END, 1, '{}'
                FROM n
                """
            ),
            {"last": count - 1, "app": APP, "t0": T0.strftime("%Y-%m-%d %H:%M:%S")},
        )
    total, by_channel = await _report(store, T0, T0 + timedelta(days=4), ["channel"])
    assert total.started == count
    assert sorted(b.started for b in by_channel) == [66_750, 66_750, 66_750]
    approved = [i for i in range(count) if i % 7 == 0]
    assert total.approved == len(approved)
    times = sorted(1000 + i % 5000 for i in approved)
    assert total.verify_p95_ms == percentile(times, 95)
    assert total.verify_p50_ms == percentile(times, 50)
