"""Money in micros, price table matching, and spend-cap periods and budgets."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from otp.cost import caps
from otp.cost.money import format_amount, parse_amount, parse_provider_price
from otp.cost.price_table import PriceRow, PriceTable, overrides_table
from otp.domain import Channel, PriceSource


def row(provider: str, channel: Channel, country: str, price: str, **kw: str) -> PriceRow:
    unit = {"sms": "segment", "voice": "minute"}.get(channel.value, "message")
    return PriceRow(
        provider,
        channel,
        country,
        kw.get("number_type", "*"),
        kw.get("unit", unit),
        parse_amount(price),
        kw.get("currency", "USD"),
    )


TABLE = PriceTable(
    [
        row("twilio", Channel.SMS, "*", "0.10"),
        row("twilio", Channel.SMS, "US", "0.0083"),
        row("twilio", Channel.SMS, "US", "0.0100", number_type="TOLL_FREE"),
        row("twilio", Channel.VOICE, "US", "0.014"),
    ],
    currency="USD",
)


def test_amounts_are_exact_micros() -> None:
    assert parse_amount("0.0083") == 8_300 and parse_amount("12") == 12_000_000
    assert format_amount(8_300) == "0.0083" and format_amount(12_500_000) == "12.50"
    assert format_amount(0) == "0.00"
    for bad in ("-1", "0.0000001", "1e3", "", "abc"):
        with pytest.raises(ValueError):
            parse_amount(bad)
    assert parse_provider_price("-0.00790") == 7_900
    assert parse_provider_price("-0.0000001") == 1  # rounded up to the micro
    assert parse_provider_price("n/a") is None and parse_provider_price("NaN") is None


def test_the_most_specific_row_wins_and_segments_multiply() -> None:
    quote = TABLE.quote("twilio", Channel.SMS, country="US", number_type="MOBILE", segments=3)
    assert (quote.micros, quote.units, quote.source) == (3 * 8_300, 3, PriceSource.TABLE)
    toll_free = TABLE.quote("twilio", Channel.SMS, country="US", number_type="TOLL_FREE")
    assert toll_free.micros == 10_000
    call = TABLE.quote("twilio", Channel.VOICE, country="US", segments=5)
    assert (call.micros, call.unit, call.units) == (14_000, "minute", 1)


def test_an_unknown_country_takes_the_default_flagged_and_no_row_is_free() -> None:
    unknown = TABLE.quote("twilio", Channel.SMS, country="ZZ")
    assert unknown.source is PriceSource.DEFAULT and unknown.cost().flagged
    assert unknown.micros == 100_000
    assert TABLE.quote("sandbox", Channel.SMS, country="US").source is PriceSource.FREE
    # No default for voice: a country the table lacks costs nothing (and says so).
    assert TABLE.quote("twilio", Channel.VOICE, country="GB").source is PriceSource.FREE


def test_an_applications_price_replaces_the_tables() -> None:
    own = overrides_table([row("twilio", Channel.SMS, "*", "0.005")], currency="USD")
    quote = TABLE.quote("twilio", Channel.SMS, country="US", overrides=own, segments=2)
    assert (quote.micros, quote.source) == (10_000, PriceSource.OVERRIDE)


def test_a_table_in_another_currency_is_refused() -> None:
    with pytest.raises(ValueError, match="OTP_CURRENCY"):
        PriceTable([row("twilio", Channel.SMS, "US", "0.01", currency="EUR")], currency="USD")


def test_caps_run_per_utc_day_and_month() -> None:
    now = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    settings = caps.SpendCaps(daily="10", country_daily={"id": "2.5"})
    assert settings.country_daily == {"ID": "2.50"}
    budgets = caps.budgets(settings, application_id="app", mode="live", country="ID", now=now)
    assert [b.key for b in budgets] == [
        "app:live:spend:d:2026-12-31",
        "app:live:spend:m:2026-12",
        "app:live:spend:cd:ID:2026-12-31",
    ]
    assert [b.limit.limit for b in budgets] == [10_000_000, 20_000_000_000, 2_500_000]
    assert (
        budgets[0].expires_at
        == budgets[1].expires_at
        == datetime(2027, 1, 1, tzinfo=UTC).timestamp()
    )
    # A cap switched off is not charged; another country has no country cap.
    off = caps.SpendCaps(daily=None, monthly=None)
    assert caps.budgets(off, application_id="a", mode="live", country="US", now=now) == []
    with pytest.raises(ValueError):
        caps.SpendCaps(daily="-5")
    with pytest.raises(ValueError):
        caps.SpendCaps(country_daily={"USA": "1"})
