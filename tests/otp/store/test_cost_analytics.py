"""Cost analytics over a seeded data set, against a hand computation (SQLite and PostgreSQL).

The data set (application `app_costs`, live mode, UTC):

| verification | created    | first channel, country | status   | deliveries (provider channel: micros)          |
| ------------ | ---------- | ---------------------- | -------- | ---------------------------------------------- |
| v1           | 05-01      | sms US                 | approved | twilio sms: estimate 8 300, reported 7 900 USD  |
| v2           | 05-01      | sms GB                 | approved | twilio sms 52 400; fallback twilio voice 100 000 (default) |
| v3           | 05-02      | sms US                 | expired  | twilio sms 8 300; resend twilio sms 8 300       |
| v4           | 05-02      | whatsapp FR            | approved | meta_whatsapp 50 000 (default), reported 0.04 EUR |
| v5           | 05-02      | email                  | approved | smtp email 0 (free)                             |
| v6           | 05-02      | sms US                 | blocked  | none                                            |

Outside the report: the same rows of another application, of test mode, and a
verification created the day before the range (its delivery falls inside it).

What counts per delivery: the provider's price when it reported one in USD (v1: 7 900
instead of 8 300), the estimate otherwise (v4's EUR price is kept but not counted).

Totals: cost 7 900 + 152 400 + 16 600 + 50 000 + 0 + 0 = 226 900 micros = 0.2269 USD;
6 verifications, 4 approved (v1, v2, v4, v5):
- per verification 226 900 / 6 = 37 816.67 -> 37 817 micros = 0.037817;
- per approved verification 226 900 / 4 = 56 725 micros = 0.056725;
- never approved: v3 16 600 = 0.0166, share 16 600 / 226 900 = 0.07316 -> 0.0732;
- 7 deliveries: 1 priced by the provider (v1), 6 estimated, 2 flagged (v2 voice, v4).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from otp.domain import DeliveryCost, PriceSource
from otp.store import Store, VerificationRecord
from otp.store import records as store_records
from otp.store.costs import CostEntry, record_costs, set_reported_price

APP = "app_costs"
OTHER = "app_other"
DAY1 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
DAY2 = datetime(2026, 5, 2, 23, 0, tzinfo=UTC)
START = datetime(2026, 5, 1, tzinfo=UTC)
END = datetime(2026, 5, 3, tzinfo=UTC)

# id, created, first channel, country, status
VERIFICATIONS = (
    ("v1", DAY1, "sms", "US", "approved"),
    ("v2", DAY1, "sms", "GB", "approved"),
    ("v3", DAY2, "sms", "US", "expired"),
    ("v4", DAY2, "whatsapp", "FR", "approved"),
    ("v5", DAY2, "email", None, "approved"),
    ("v6", DAY2, "sms", "US", "blocked"),
    ("v0", START - timedelta(hours=2), "sms", "US", "approved"),
)
# verification, n, provider, channel, country, kind, step, micros, source
DELIVERIES = (
    ("v1", 1, "twilio", "sms", "US", "step", 0, 8_300, PriceSource.TABLE),
    ("v2", 1, "twilio", "sms", "GB", "step", 0, 52_400, PriceSource.TABLE),
    ("v2", 2, "twilio", "voice", "GB", "step", 1, 100_000, PriceSource.DEFAULT),
    ("v3", 1, "twilio", "sms", "US", "step", 0, 8_300, PriceSource.TABLE),
    ("v3", 2, "twilio", "sms", "US", "resend", 0, 8_300, PriceSource.TABLE),
    ("v4", 1, "meta_whatsapp", "whatsapp", "FR", "step", 0, 50_000, PriceSource.DEFAULT),
    ("v5", 1, "smtp", "email", None, "step", 0, 0, PriceSource.FREE),
    ("v0", 1, "twilio", "sms", "US", "step", 0, 8_300, PriceSource.TABLE),
)


def _verification(
    app: str, mode: str, vid: str, created: datetime, channel: str, country: str | None, status: str
) -> dict[str, Any]:
    return {
        "id": f"ver_{app}_{mode}_{vid}",
        "application_id": app,
        "mode": mode,
        "status": status,
        "first_channel": channel,
        "channel": channel,
        "channels": [channel],
        "country": country,
        "to_masked": "",
        "created_at": created,
        "expires_at": created + timedelta(minutes=10),
        "updated_at": created,
        "max_attempts": 5,
        "sends": 1,
        "final": True,
        "snapshot": {},
    }


async def _seed(store: Store) -> None:
    rows, entries = [], []
    for app, mode in ((APP, "live"), (OTHER, "live"), (APP, "test")):
        for vid, created, channel, country, status in VERIFICATIONS:
            rows.append(_verification(app, mode, vid, created, channel, country, status))
        for vid, n, provider, channel, country, kind, step, micros, source in DELIVERIES:
            created = next(v[1] for v in VERIFICATIONS if v[0] == vid)
            verification_id = f"ver_{app}_{mode}_{vid}"
            entries.append(
                CostEntry(
                    delivery_key=f"{verification_id}:run:{n}",
                    verification_id=verification_id,
                    application_id=app,
                    mode=mode,
                    provider=provider,
                    channel=channel,
                    country=country,
                    kind=kind,
                    step_index=step,
                    sent_at=created + timedelta(hours=2, seconds=n * 30),
                    provider_message_id=f"SM{app}{mode}{vid}{n}",
                    cost=DeliveryCost(
                        currency="USD", estimate_micros=micros, source=source, units=1
                    ),
                )
            )
    async with store.engine.begin() as conn:
        await conn.execute(insert(VerificationRecord), rows)
    await record_costs(store, entries)
    # The providers' prices, as a receipt brings them: v1's replaces its estimate; v4's
    # is in another currency than the deployment's, so its estimate still counts.
    for app, mode in ((APP, "live"), (OTHER, "live"), (APP, "test")):
        await set_reported_price(
            store,
            provider="twilio",
            provider_message_id=f"SM{app}{mode}v11",
            micros=7_900,
            currency="USD",
        )
        await set_reported_price(
            store,
            provider="meta_whatsapp",
            delivery_key=f"ver_{app}_{mode}_v4:run:1",
            micros=40_000,
            currency="EUR",
        )


async def _report(
    store: Store, group_by: list[str]
) -> tuple[dict[str, Any], dict[tuple[Any, ...], dict[str, Any]]]:
    total, buckets = await store_records.analytics(
        store,
        application_id=APP,
        mode="live",
        created_from=START,
        created_to=END,
        group_by=group_by,
        currency="USD",
    )
    return total.as_dict(), {tuple(b.key.values()): b.as_dict() for b in buckets}


COST_FIGURES = (
    "started",
    "approved",
    "currency",
    "cost",
    "cost_per_verification",
    "cost_per_approved_verification",
    "unapproved_cost",
    "unapproved_cost_share",
    "deliveries",
    "deliveries_priced_by_provider",
    "deliveries_estimated",
    "estimates_flagged",
)


def _costs(figures: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(figures[name] for name in COST_FIGURES)


async def test_totals_match_the_hand_computation(any_store: Store) -> None:
    await _seed(any_store)
    total, _ = await _report(any_store, [])
    assert _costs(total) == (
        6,
        4,
        "USD",
        "0.2269",
        "0.037817",
        "0.056725",
        "0.0166",
        0.0732,
        7,
        1,
        6,
        2,
    )


async def test_by_day_channel_and_country_each_verification_counts_once(any_store: Store) -> None:
    await _seed(any_store)
    _, by_day = await _report(any_store, ["day"])
    # 05-01: v1 7 900 + v2 152 400 = 160 300 over 2, both approved.
    # 05-02: v3 16 600 + v4 50 000 = 66 600 over 4 (2 approved); 16 600 / 66 600 = 0.2492.
    assert {k: _costs(v) for k, v in by_day.items()} == {
        ("2026-05-01",): (2, 2, "USD", "0.1603", "0.08015", "0.08015", "0.00", 0.0, 3, 1, 2, 1),
        ("2026-05-02",): (4, 2, "USD", "0.0666", "0.01665", "0.0333", "0.0166", 0.2492, 4, 0, 4, 1),
    }
    _, by_channel = await _report(any_store, ["channel"])
    # sms: v1 + v2 + v3 + v6 = 176 900 over 4 (2 approved): 44 225 and 88 450.
    assert {k: _costs(v) for k, v in by_channel.items()} == {
        ("email",): (1, 1, "USD", "0.00", "0.00", "0.00", "0.00", None, 1, 0, 1, 0),
        ("sms",): (4, 2, "USD", "0.1769", "0.044225", "0.08845", "0.0166", 0.0938, 5, 1, 4, 1),
        ("whatsapp",): (1, 1, "USD", "0.05", "0.05", "0.05", "0.00", 0.0, 1, 0, 1, 1),
    }
    _, by_country = await _report(any_store, ["country"])
    # US: v1 7 900 + v3 16 600 + v6 0 = 24 500 over 3 (1 approved): 8 166.67 -> 8 167.
    assert _costs(by_country[("US",)]) == (
        3,
        1,
        "USD",
        "0.0245",
        "0.008167",
        "0.0245",
        "0.0166",
        0.6776,
        3,
        1,
        2,
        0,
    )
    assert by_country[("GB",)]["cost_per_approved_verification"] == "0.1524"


async def test_by_provider_each_delivery_counts_for_its_provider(any_store: Store) -> None:
    await _seed(any_store)
    total, by_provider = await _report(any_store, ["provider"])
    # twilio sent to v1, v2, v3: 7 900 + 152 400 + 16 600 = 176 900, 2 approved: 88 450.
    assert {k: _costs(v) for k, v in by_provider.items()} == {
        ("meta_whatsapp",): (1, 1, "USD", "0.05", "0.05", "0.05", "0.00", 0.0, 1, 0, 1, 1),
        (None,): (1, 0, "USD", "0.00", "0.00", None, "0.00", None, 0, 0, 0, 0),
        ("smtp",): (1, 1, "USD", "0.00", "0.00", "0.00", "0.00", None, 1, 0, 1, 0),
        ("twilio",): (3, 2, "USD", "0.1769", "0.058967", "0.08845", "0.0166", 0.0938, 5, 1, 4, 1),
    }
    assert total["cost"] == "0.2269"
    _, by_provider_day = await _report(any_store, ["provider", "day"])
    assert by_provider_day[("twilio", "2026-05-01")]["cost"] == "0.1603"
    assert by_provider_day[("twilio", "2026-05-02")]["cost"] == "0.0166"


async def test_a_deployment_in_another_currency_counts_none_of_these_costs(
    any_store: Store,
) -> None:
    await _seed(any_store)
    total, _ = await store_records.analytics(
        any_store,
        application_id=APP,
        mode="live",
        created_from=START,
        created_to=END,
        group_by=[],
        currency="EUR",
    )
    assert (total.started, total.cost_micros, total.deliveries) == (6, 0, 0)
