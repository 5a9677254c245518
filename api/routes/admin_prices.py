"""/v1/admin: an application's own prices, the effective price table and quotes.

Same admin token as the rest of /v1/admin (`require_admin`). A PUT sets the application's
price for one route (provider, channel, country, number type), replacing the table's
row; a DELETE goes back to the table. Deliveries use a change within a few seconds.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status

from api.deps import RiskCachesDep, SettingsDep, StoreDep, require_admin
from api.routes.admin import ApplicationId, admin_responses
from api.schemas.prices import PriceList, PricePublic, PriceQuote, PriceWrite
from api.services import prices
from otp.domain import Channel

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])

_BASE = "/applications/{application_id}/prices"
Provider = Annotated[
    str, Path(min_length=1, max_length=40, pattern=r"^[a-z_]+$", examples=["twilio"])
]
Country = Annotated[
    str,
    Path(min_length=1, max_length=2, description="ISO 3166-1 alpha-2, or `*`: every country."),
]
NumberType = Annotated[
    str,
    Query(max_length=32, description="A phone number type (`MOBILE`, `TOLL_FREE`) or `*`."),
]


@router.get(
    _BASE,
    response_model=PriceList,
    summary="The effective price table of an application",
    responses=admin_responses(401, 404, 422),
)
async def list_prices_route(
    application_id: ApplicationId,
    store: StoreDep,
    settings: SettingsDep,
    provider: Annotated[str | None, Query(max_length=40)] = None,
    channel: Channel | None = None,
    country: Annotated[str | None, Query(max_length=2)] = None,
) -> PriceList:
    """The built-in table's rows (marked `overridden` where the application has its own)
    and the application's own prices, optionally filtered."""
    return await prices.list_prices(
        store, settings, application_id, provider=provider, channel=channel, country=country
    )


@router.get(
    _BASE + "/quote",
    response_model=PriceQuote,
    summary="What one delivery would cost",
    responses=admin_responses(401, 404, 422),
)
async def quote_route(
    application_id: ApplicationId,
    store: StoreDep,
    settings: SettingsDep,
    to: Annotated[str, Query(min_length=3, max_length=320, description="The destination.")],
    channel: Channel,
    provider: Annotated[str, Query(min_length=1, max_length=40)],
    segments: Annotated[int, Query(ge=1, le=10, description="SMS segments.")] = 1,
) -> PriceQuote:
    """The estimate and where it comes from; `flagged` when the provider's default price
    was used (the table has no row for the country). Sends nothing."""
    return await prices.quote(
        store,
        settings,
        application_id,
        to=to,
        channel=channel,
        provider=provider,
        segments=segments,
    )


@router.put(
    _BASE + "/{provider}/{channel}/{country}",
    response_model=PricePublic,
    summary="Set the application's price for a route",
    responses=admin_responses(401, 404, 422),
)
async def set_price_route(
    application_id: ApplicationId,
    provider: Provider,
    channel: Channel,
    country: Country,
    body: PriceWrite,
    store: StoreDep,
    settings: SettingsDep,
    caches: RiskCachesDep,
    number_type: NumberType = "*",
) -> PricePublic:
    """Replaces the table's price (and the application's previous one) for this route."""
    saved = await prices.set_price(
        store,
        settings,
        application_id,
        provider=provider,
        channel=channel,
        country=country,
        number_type=number_type,
        body=body,
    )
    caches.price_book(store, settings).forget(application_id)
    return saved


@router.delete(
    _BASE + "/{provider}/{channel}/{country}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Remove the application's price for a route",
    responses=admin_responses(401, 404, 422),
)
async def remove_price_route(
    application_id: ApplicationId,
    provider: Provider,
    channel: Channel,
    country: Country,
    store: StoreDep,
    settings: SettingsDep,
    caches: RiskCachesDep,
    number_type: NumberType = "*",
) -> Response:
    """The table's price applies again to this route."""
    await prices.remove_price(
        store,
        application_id,
        provider=provider,
        channel=channel,
        country=country,
        number_type=number_type,
    )
    caches.price_book(store, settings).forget(application_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
