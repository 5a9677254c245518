"""The built-in price table file: every row parses, names its source, is in USD, has no
duplicate route, and every provider+channel has exactly one default; every country of the
routing facts has a Twilio SMS price."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from otp.cost.price_table import ANY, PRICES_FILE, default_table, load_rows
from otp.domain import Channel, PriceSource

FACTS = Path(__file__).resolve().parents[3] / "otp" / "routing" / "country_facts.csv"


def test_every_row_parses_in_usd_with_a_source_and_no_duplicate_route() -> None:
    rows = load_rows(PRICES_FILE)
    assert len(rows) >= 60
    assert {row.currency for row in rows} == {"USD"}
    assert all(row.source for row in rows)
    duplicates = [r for r, n in Counter(row.route for row in rows).items() if n > 1]
    assert duplicates == []
    for row in rows:
        if row.checked_on:
            year, month = row.checked_on.split("-")
            assert len(year) == 4 and 1 <= int(month) <= 12, row


def test_one_default_per_provider_and_channel() -> None:
    rows = load_rows(PRICES_FILE)
    pairs = {(row.provider, row.channel) for row in rows}
    defaults = Counter(
        (r.provider, r.channel) for r in rows if (r.country, r.number_type) == (ANY, ANY)
    )
    assert dict(defaults) == dict.fromkeys(pairs, 1)


def test_the_routing_facts_countries_have_twilio_sms_prices() -> None:
    with FACTS.open(encoding="utf-8") as handle:
        countries = {row["country"] for row in csv.DictReader(handle)}
    table = default_table()
    for country in countries:
        quote = table.quote("twilio", Channel.SMS, country=country)
        assert quote.source is PriceSource.TABLE, country
    counted = Counter(r.channel for r in table.rows if r.provider == "twilio" and r.country != ANY)
    assert counted[Channel.SMS] >= 35 and counted[Channel.VOICE] >= 10
    assert counted[Channel.WHATSAPP] >= 10


def test_unknown_country_is_the_default_flagged_and_smtp_is_free() -> None:
    table = default_table()
    unknown = table.quote("twilio", Channel.SMS, country="KE", segments=2)
    assert (unknown.source, unknown.micros) == (PriceSource.DEFAULT, 200_000)
    assert table.quote("smtp", Channel.EMAIL, country=None).source is PriceSource.FREE
    assert table.quote("http_gateway", Channel.SMS, country="US").source is PriceSource.DEFAULT
