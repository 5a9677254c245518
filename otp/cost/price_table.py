"""The price of one delivery: by provider, channel, destination country and number type.

The data is `prices.csv` beside this module (or the file `OTP_PRICE_TABLE` names), one
row per route, each with its unit (`segment` for SMS, `message` for WhatsApp and email,
`minute` for voice), its price in the table's one currency, and its source:

    provider,channel,country,number_type,unit,price,currency,source,checked_on

- `country` is ISO 3166-1 alpha-2, or `*`: the provider's default for that channel, used
  for a country the table does not list (the estimate is then flagged `default`);
- `number_type` is a `phonenumbers.PhoneNumberType` name (`MOBILE`, `TOLL_FREE`, ...) or
  `*` for every type; the most specific row wins (country and type, then country, then
  the default);
- a provider without any row for a channel costs nothing (`free`): the sandbox, and an
  SMTP relay whose price the operator has not entered.

An application's own prices (`price_overrides`, admin API and `otp prices`) take
precedence over the table, with the same matching rules. Every amount is in micros of
the deployment's currency (`OTP_CURRENCY`); the table must be in that currency.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from otp.cost.money import check_currency, format_money, parse_amount
from otp.domain import Channel, DeliveryCost, PriceSource

PRICES_FILE = Path(__file__).with_name("prices.csv")
ANY = "*"
UNITS = ("segment", "message", "minute")
# The unit each channel is counted in (what `units` of a quote means).
CHANNEL_UNIT: dict[Channel, str] = {
    Channel.SMS: "segment",
    Channel.WHATSAPP: "message",
    Channel.VOICE: "minute",
    Channel.EMAIL: "message",
}
# A voice call reading the code twice takes under a minute: providers bill whole minutes.
VOICE_MINUTES_ESTIMATE = 1


@dataclass(frozen=True)
class PriceRow:
    """One route's price: `price_micros` per `unit`."""

    provider: str
    channel: Channel
    country: str  # ISO alpha-2 or ANY
    number_type: str  # PhoneNumberType name or ANY
    unit: str
    price_micros: int
    currency: str
    source: str = ""
    checked_on: str = ""

    @property
    def route(self) -> tuple[str, Channel, str, str]:
        return (self.provider, self.channel, self.country, self.number_type)


def _country(value: str) -> str:
    code = value.strip().upper()
    if code != ANY and (len(code) != 2 or not code.isalpha()):
        raise ValueError(f"bad country {value!r} (ISO 3166-1 alpha-2 or '*')")
    return code


def _number_type(value: str) -> str:
    name = value.strip().upper() or ANY
    if name != ANY and not name.replace("_", "").isalpha():
        raise ValueError(f"bad number type {value!r}")
    return name


def parse_row(row: dict[str, str], *, where: str = "price table") -> PriceRow:
    """One CSV row, checked; ValueError naming `where` and the row."""
    try:
        channel = Channel(row["channel"].strip().lower())
        unit = row["unit"].strip().lower()
        if unit not in UNITS:
            raise ValueError(f"unit is one of {', '.join(UNITS)}, not {unit!r}")
        provider = row["provider"].strip()
        if not provider:
            raise ValueError("no provider")
        return PriceRow(
            provider=provider,
            channel=channel,
            country=_country(row["country"]),
            number_type=_number_type(row.get("number_type") or ANY),
            unit=unit,
            price_micros=parse_amount(row["price"]),
            currency=check_currency(row["currency"]),
            source=(row.get("source") or "").strip(),
            checked_on=(row.get("checked_on") or "").strip(),
        )
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{where}: row {row!r}: {exc}") from None


def load_rows(path: Path) -> list[PriceRow]:
    with path.open(newline="", encoding="utf-8") as handle:
        lines = (line for line in handle if line.strip() and not line.startswith("#"))
        return [parse_row(row, where=str(path)) for row in csv.DictReader(lines)]


@dataclass(frozen=True)
class Quote:
    """What one delivery is estimated to cost, and from which row."""

    micros: int
    currency: str
    source: PriceSource
    units: int
    unit: str
    unit_price_micros: int
    row: PriceRow | None = None

    def cost(self) -> DeliveryCost:
        return DeliveryCost(
            currency=self.currency,
            estimate_micros=self.micros,
            source=self.source,
            units=self.units,
            unit=self.unit,
            unit_price_micros=self.unit_price_micros,
        )

    def describe(self) -> str:
        return f"{format_money(self.micros, self.currency)} ({self.units} {self.unit})"


def units_for(channel: Channel, *, segments: int = 1) -> int:
    """How many units of its channel one delivery counts: SMS segments, one message,
    the estimated call minutes."""
    if channel is Channel.SMS:
        return max(1, segments)
    if channel is Channel.VOICE:
        return VOICE_MINUTES_ESTIMATE
    return 1


class PriceTable:
    """Price rows indexed by route, with an application's overrides on top."""

    def __init__(self, rows: Iterable[PriceRow], *, currency: str) -> None:
        self.currency = check_currency(currency)
        self._rows: dict[tuple[str, Channel, str, str], PriceRow] = {}
        self._providers: set[tuple[str, Channel]] = set()
        for row in rows:
            if row.currency != self.currency:
                raise ValueError(
                    f"price table: {row.provider} {row.channel.value} {row.country} is in "
                    f"{row.currency}, the deployment's currency is {self.currency} "
                    "(OTP_CURRENCY; give a table in that currency with OTP_PRICE_TABLE)"
                )
            self._rows[row.route] = row
            self._providers.add((row.provider, row.channel))

    @property
    def rows(self) -> list[PriceRow]:
        return sorted(self._rows.values(), key=lambda r: r.route)

    def find(
        self, provider: str, channel: Channel, country: str | None, number_type: str | None
    ) -> tuple[PriceRow | None, bool]:
        """The most specific row for a route and whether it is the provider's default
        (no row for the country); (None, False) when the provider has no price for the
        channel."""
        country = (country or "").upper() or ANY
        number_type = (number_type or "").upper() or ANY
        for key_country, key_type in (
            (country, number_type),
            (country, ANY),
            (ANY, number_type),
            (ANY, ANY),
        ):
            row = self._rows.get((provider, channel, key_country, key_type))
            if row is not None:
                return row, key_country == ANY and country != ANY
        return None, False

    def quote(
        self,
        provider: str,
        channel: Channel,
        *,
        country: str | None,
        number_type: str | None = None,
        segments: int = 1,
        overrides: PriceTable | None = None,
    ) -> Quote:
        """The estimate for one delivery. An override for the route (however general)
        wins over the table; then the table; then free."""
        units = units_for(channel, segments=segments)
        if overrides is not None:
            row, _ = overrides.find(provider, channel, country, number_type)
            if row is not None:
                return self._quote(row, units, PriceSource.OVERRIDE)
        row, default = self.find(provider, channel, country, number_type)
        if row is None:
            return Quote(0, self.currency, PriceSource.FREE, units, CHANNEL_UNIT[channel], 0)
        return self._quote(row, units, PriceSource.DEFAULT if default else PriceSource.TABLE)

    def _quote(self, row: PriceRow, units: int, source: PriceSource) -> Quote:
        # A row counted in another unit than the channel's (a per-message SMS price)
        # charges once per delivery.
        count = units if row.unit == CHANNEL_UNIT[row.channel] else 1
        return Quote(
            micros=math.prod((row.price_micros, count)),
            currency=self.currency,
            source=source,
            units=count,
            unit=row.unit,
            unit_price_micros=row.price_micros,
            row=row,
        )


@cache
def _default_rows(path: str) -> tuple[PriceRow, ...]:
    return tuple(load_rows(Path(path)))


def default_table(*, currency: str = "USD", path: str | None = None) -> PriceTable:
    """The built-in table (or the file at `path`), loaded once per process."""
    return PriceTable(_default_rows(path or str(PRICES_FILE)), currency=currency)


def overrides_table(rows: Sequence[PriceRow], *, currency: str) -> PriceTable | None:
    """An application's override rows as a table (None when it has none)."""
    return PriceTable(rows, currency=currency) if rows else None
