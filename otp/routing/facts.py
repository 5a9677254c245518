"""Country facts a routing rule must respect: which sender types each country accepts.

The data is `country_facts.csv` beside this module, one row per country (ISO 3166-1
alpha-2), each with its source (the regulator's or a provider's country guideline page):

- `alphanumeric`: `allowed` (dynamic sender IDs), `registration` (only pre-registered ones
  are delivered: allowed here, with a warning) or `not_allowed` (a number is needed);
- `numbers`: the number types that carry A2P SMS there (`long_code`, `short_code`,
  `toll_free`), `|`-separated.

Loaded once per process. A country not in the file has no known restriction.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path

from otp.domain import Channel
from otp.domain.routing import SenderType

FACTS_FILE = Path(__file__).with_name("country_facts.csv")


class Alphanumeric(StrEnum):
    ALLOWED = "allowed"
    REGISTRATION = "registration"
    NOT_ALLOWED = "not_allowed"


@dataclass(frozen=True)
class CountryFact:
    country: str
    name: str
    alphanumeric: Alphanumeric
    numbers: frozenset[str]
    note: str
    source: str


@dataclass(frozen=True)
class SenderCheck:
    """The verdict on one sender for one country: `refused` with its reason, or a `warning`."""

    country: str
    refused: bool
    reason: str
    source: str


def _parse(row: dict[str, str]) -> CountryFact:
    country = row["country"].strip().upper()
    if len(country) != 2 or not country.isalpha():
        raise ValueError(f"country facts: bad country code {country!r}")
    source = row["source"].strip()
    if not source.startswith("https://"):
        raise ValueError(f"country facts: {country} has no source")
    return CountryFact(
        country=country,
        name=row["name"].strip(),
        alphanumeric=Alphanumeric(row["alphanumeric"].strip()),
        numbers=frozenset(n for n in row["numbers"].strip().split("|") if n),
        note=row["note"].strip(),
        source=source,
    )


def load_facts(path: Path = FACTS_FILE) -> dict[str, CountryFact]:
    """Every row of the facts file by country (raises ValueError on a bad row)."""
    with path.open(newline="", encoding="utf-8") as handle:
        facts = [_parse(row) for row in csv.DictReader(handle)]
    by_country = {fact.country: fact for fact in facts}
    if len(by_country) != len(facts):
        raise ValueError("country facts: a country appears twice")
    return by_country


@cache
def country_facts() -> dict[str, CountryFact]:
    """The facts file, read once per process."""
    return load_facts()


def check_sender(country: str, channel: Channel, sender_type: SenderType) -> SenderCheck | None:
    """What the country's facts say of sending `channel` from a `sender_type` (None: nothing)."""
    fact = country_facts().get(country.upper())
    if fact is None or channel is not Channel.SMS:
        return None
    if sender_type is SenderType.ALPHANUMERIC:
        if fact.alphanumeric is Alphanumeric.NOT_ALLOWED:
            return SenderCheck(fact.country, True, f"{fact.name}: {fact.note}", fact.source)
        if fact.alphanumeric is Alphanumeric.REGISTRATION:
            return SenderCheck(fact.country, False, f"{fact.name}: {fact.note}", fact.source)
        return None
    kind = sender_type.value
    if sender_type in {SenderType.LONG_CODE, SenderType.SHORT_CODE} and kind not in fact.numbers:
        carried = ", ".join(sorted(fact.numbers)) or "none"
        return SenderCheck(
            fact.country,
            True,
            f"{fact.name}: a {kind.replace('_', ' ')} does not carry A2P SMS there "
            f"(numbers that do: {carried})",
            fact.source,
        )
    return None
