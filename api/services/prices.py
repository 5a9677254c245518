"""An application's own prices: the effective table (built-in rows and its overrides),
setting and removing one route's price, and the quote of one delivery.

Rules: amounts are decimal strings in the deployment's currency (`OTP_CURRENCY`); a price
in another currency, a bad amount, unit, country or number type is one 422 problem and
changes nothing. An override replaces the table's row for its route (however general it
is, it wins over the table: `otp.cost.price_table.PriceTable.quote`).
"""

from __future__ import annotations

import phonenumbers

from api.problems import PriceNotFound, field_error, invalid, param_error
from api.schemas.prices import PriceList, PricePublic, PriceQuote, PriceWrite
from api.services.applications import require_application
from otp.cost.money import format_amount
from otp.cost.price_table import (
    ANY,
    CHANNEL_UNIT,
    PriceRow,
    PriceTable,
    default_table,
    overrides_table,
    parse_row,
)
from otp.domain import Channel, PriceSource
from otp.domain.destinations import InvalidDestinationError, parse_destination
from otp.settings import Settings
from otp.store import Store
from otp.store import prices as store_prices
from otp.store.tables import PriceOverride


def table_of(settings: Settings) -> PriceTable:
    """The deployment's price table (built-in or `OTP_PRICE_TABLE`)."""
    return default_table(currency=settings.currency, path=settings.price_table_path)


def _public(row: PriceRow, *, origin: str, overridden: bool = False) -> PricePublic:
    return PricePublic(
        provider=row.provider,
        channel=row.channel,
        country=row.country,
        number_type=row.number_type,
        unit=row.unit,
        price=format_amount(row.price_micros),
        currency=row.currency,
        origin=origin,
        overridden=overridden,
        source=row.source,
        checked_on=row.checked_on,
    )


def _override_public(row: PriceOverride) -> PricePublic:
    found = _public(store_prices.price_row(row), origin="override")
    found.updated_at = row.updated_at
    return found


def _route_key(country: str, number_type: str) -> tuple[str, str]:
    errors = []
    country = country.strip().upper()
    number_type = number_type.strip().upper() or ANY
    if country != ANY and (len(country) != 2 or not country.isalpha()):
        errors.append(param_error("path", "country", "ISO 3166-1 alpha-2 or *"))
    elif country != ANY and phonenumbers.country_code_for_region(country) == 0:
        errors.append(param_error("path", "country", f"unknown country {country}"))
    if number_type != ANY and not hasattr(phonenumbers.PhoneNumberType, number_type):
        errors.append(param_error("query", "number_type", "a phone number type (MOBILE, ...)"))
    if errors:
        raise invalid(errors)
    return country, number_type


async def list_prices(
    store: Store,
    settings: Settings,
    application_id: str,
    *,
    provider: str | None = None,
    channel: Channel | None = None,
    country: str | None = None,
) -> PriceList:
    """The table's rows and the application's own prices, each marked, filtered."""
    app = await require_application(store, application_id)
    overrides = await store_prices.list_overrides(store, application_id=app.id)
    own = {store_prices.price_row(o).route: o for o in overrides}
    rows = [_public(r, origin="table", overridden=r.route in own) for r in table_of(settings).rows]
    rows += [_override_public(o) for o in overrides]
    wanted = (country or "").upper()
    prices = [
        p
        for p in rows
        if (provider is None or p.provider == provider)
        and (channel is None or p.channel is channel)
        and (not wanted or p.country == wanted)
    ]
    prices.sort(key=lambda p: (p.provider, p.channel.value, p.country, p.number_type, p.origin))
    return PriceList(currency=settings.currency, prices=prices)


async def set_price(
    store: Store,
    settings: Settings,
    application_id: str,
    *,
    provider: str,
    channel: Channel,
    country: str,
    number_type: str,
    body: PriceWrite,
) -> PricePublic:
    """Set the application's price for one route (replacing its previous one)."""
    app = await require_application(store, application_id)
    country, number_type = _route_key(country, number_type)
    if body.currency.upper() != settings.currency:
        raise invalid(
            [
                field_error(
                    "#/currency",
                    f"prices are in the deployment's currency, {settings.currency}",
                    "currency_mismatch",
                )
            ]
        )
    try:
        row = parse_row(
            {
                "provider": provider,
                "channel": channel.value,
                "country": country,
                "number_type": number_type,
                "unit": body.unit or CHANNEL_UNIT[channel],
                "price": body.price,
                "currency": body.currency,
                "source": body.note,
            },
            where="price",
        )
    except ValueError as exc:
        detail = str(exc).rsplit(": ", 1)[-1]
        pointer = "#/unit" if "unit" in detail else "#/price"
        raise invalid([field_error(pointer, detail)]) from None
    saved = await store_prices.set_override(store, application_id=app.id, row=row, note=body.note)
    return _override_public(saved)


async def remove_price(
    store: Store,
    application_id: str,
    *,
    provider: str,
    channel: Channel,
    country: str,
    number_type: str,
) -> None:
    """Remove the application's price for one route (the table's applies again); 404
    when it had none."""
    app = await require_application(store, application_id)
    country, number_type = _route_key(country, number_type)
    if not await store_prices.delete_override(
        store,
        application_id=app.id,
        provider=provider,
        channel=channel,
        country=country,
        number_type=number_type,
    ):
        raise PriceNotFound()


async def quote(
    store: Store,
    settings: Settings,
    application_id: str,
    *,
    to: str,
    channel: Channel,
    provider: str,
    segments: int = 1,
) -> PriceQuote:
    """The estimate of one delivery to `to`: the application's price, the table's, the
    provider's default (flagged) or free."""
    app = await require_application(store, application_id)
    try:
        destination = parse_destination(to, channel)
    except InvalidDestinationError as exc:
        raise invalid(
            [param_error("query", "to", f"invalid destination for {channel.value}: {exc}")]
        ) from None
    number_type = None
    if destination.country is not None:
        kind = phonenumbers.number_type(phonenumbers.parse(destination.value))
        number_type = phonenumbers.PhoneNumberType.to_string(kind)
    rows = await store_prices.override_rows(store, application_id=app.id)
    found = table_of(settings).quote(
        provider,
        channel,
        country=destination.country,
        number_type=number_type,
        segments=segments,
        overrides=overrides_table(rows, currency=settings.currency),
    )
    return PriceQuote(
        provider=provider,
        channel=channel,
        country=destination.country,
        number_type=number_type,
        units=found.units,
        unit=found.unit,
        unit_price=format_amount(found.unit_price_micros),
        estimate=format_amount(found.micros),
        currency=found.currency,
        source=found.source,
        flagged=found.source is PriceSource.DEFAULT,
    )
