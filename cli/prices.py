"""`otp prices list|set|remove|quote`: an application's own prices and quotes.

The same services as the admin API (`api.services.prices`): amounts are decimal strings
in the deployment's currency (`OTP_CURRENCY`); refused input prints why and exits 2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.common import AppOption, JsonOption, in_store_or_fail, print_json, table
from otp.settings import get_settings

if TYPE_CHECKING:
    from otp.store import Store

prices_app = typer.Typer(
    help="Prices: the price table, an application's own prices, and quotes.",
    no_args_is_help=True,
)

ProviderOption = Annotated[str, typer.Option("--provider", help="twilio, meta_whatsapp, ...")]
ChannelOption = Annotated[str, typer.Option("--channel", help="sms, whatsapp, voice or email.")]
CountryOption = Annotated[
    str, typer.Option("--country", help="ISO 3166-1 alpha-2, or * for every country.")
]
NumberTypeOption = Annotated[
    str, typer.Option("--number-type", help="MOBILE, TOLL_FREE, ... or * for every type.")
]


def _channel(value: str) -> Any:
    from otp.domain import Channel

    try:
        return Channel(value)
    except ValueError:
        raise typer.BadParameter("sms, whatsapp, voice or email", param_hint="--channel") from None


def list_prices(
    application_id: AppOption,
    provider: Annotated[str | None, typer.Option("--provider")] = None,
    channel: Annotated[str | None, typer.Option("--channel")] = None,
    country: Annotated[str | None, typer.Option("--country")] = None,
    as_json: JsonOption = False,
) -> None:
    """The effective price table: the built-in rows and the application's own."""
    from api.services import prices as service

    async def work(store: Store) -> Any:
        return await service.list_prices(
            store,
            get_settings(),
            application_id,
            provider=provider,
            channel=_channel(channel) if channel else None,
            country=country,
        )

    found = in_store_or_fail(work)
    if as_json:
        print_json(found.model_dump(mode="json"))
        return
    rows = [["PROVIDER", "CHANNEL", "COUNTRY", "TYPE", "PRICE", "UNIT", "ORIGIN", "CHECKED"]]
    for p in found.prices:
        origin = p.origin + (" (overridden)" if p.overridden else "")
        rows.append(
            [
                p.provider,
                p.channel.value,
                p.country,
                p.number_type,
                p.price,
                p.unit,
                origin,
                p.checked_on or "-",
            ]
        )
    typer.echo(f"currency: {found.currency}")
    table(rows)


def set_price(
    application_id: AppOption,
    provider: ProviderOption,
    channel: ChannelOption,
    country: CountryOption,
    price: Annotated[str, typer.Option("--price", help="A decimal amount, e.g. 0.0065.")],
    number_type: NumberTypeOption = "*",
    unit: Annotated[str | None, typer.Option("--unit", help="segment, message or minute.")] = None,
    note: Annotated[str, typer.Option("--note", help="Where the price comes from.")] = "",
) -> None:
    """Set the application's price for a route (replaces the table's for it)."""
    from api.schemas.prices import PriceWrite
    from api.services import prices as service

    settings = get_settings()
    body = PriceWrite(price=price, currency=settings.currency, unit=unit, note=note)

    async def work(store: Store) -> Any:
        return await service.set_price(
            store,
            settings,
            application_id,
            provider=provider,
            channel=_channel(channel),
            country=country,
            number_type=number_type,
            body=body,
        )

    saved = in_store_or_fail(work)
    typer.echo(
        f"{saved.provider} {saved.channel.value} {saved.country} {saved.number_type}: "
        f"{saved.price} {saved.currency} per {saved.unit}"
    )


def remove_price(
    application_id: AppOption,
    provider: ProviderOption,
    channel: ChannelOption,
    country: CountryOption,
    number_type: NumberTypeOption = "*",
) -> None:
    """Remove the application's price for a route (the table's applies again)."""
    from api.services import prices as service

    async def work(store: Store) -> None:
        await service.remove_price(
            store,
            application_id,
            provider=provider,
            channel=_channel(channel),
            country=country,
            number_type=number_type,
        )

    in_store_or_fail(work)
    typer.echo("removed")


def quote(
    application_id: AppOption,
    to: Annotated[str, typer.Option("--to", help="The destination.")],
    channel: ChannelOption,
    provider: ProviderOption,
    segments: Annotated[int, typer.Option("--segments", min=1, max=10)] = 1,
    as_json: JsonOption = False,
) -> None:
    """What one delivery would cost (sends nothing)."""
    from api.services import prices as service

    async def work(store: Store) -> Any:
        return await service.quote(
            store,
            get_settings(),
            application_id,
            to=to,
            channel=_channel(channel),
            provider=provider,
            segments=segments,
        )

    found = in_store_or_fail(work)
    if as_json:
        print_json(found.model_dump(mode="json"))
        return
    flag = (
        "  (the provider's default: the table has no row for this country)" if found.flagged else ""
    )
    typer.echo(
        f"{found.estimate} {found.currency}: {found.units} {found.unit} x {found.unit_price} "
        f"({found.source.value}){flag}"
    )


prices_app.command("list")(list_prices)
prices_app.command("set")(set_price)
prices_app.command("remove")(remove_price)
prices_app.command("quote")(quote)
