"""An application's own prices, the effective price table and quotes.

Amounts are decimal strings in the deployment's currency (`OTP_CURRENCY`), never floats."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from api.schemas.base import RequestModel, ResponseModel
from otp.domain import Channel, PriceSource


class PriceWrite(RequestModel):
    """The application's price for one route (provider, channel, country, number type)."""

    unit: str | None = Field(
        default=None,
        description="segment (SMS), message (WhatsApp, email) or minute (voice); default: "
        "the channel's unit.",
    )
    price: str = Field(
        max_length=20, description="Per unit, a decimal string.", examples=["0.0075"]
    )
    currency: str = Field(
        min_length=3, max_length=3, description="Must be the deployment's currency."
    )
    note: str = Field(default="", max_length=300, description="Where the price comes from.")


class PricePublic(ResponseModel):
    provider: str
    channel: Channel
    country: str = Field(description="ISO 3166-1 alpha-2, or `*` (the provider's default).")
    number_type: str = Field(description="A phone number type, or `*` for every type.")
    unit: str
    price: str
    currency: str
    origin: str = Field(description="`table` (the built-in table) or `override` (its own).")
    overridden: bool = Field(
        default=False, description="A table row replaced by the application's own price."
    )
    source: str = Field(default="", description="The table row's source, or the note.")
    checked_on: str = Field(default="", description="YYYY-MM the table figure was checked.")
    updated_at: datetime | None = None


class PriceList(ResponseModel):
    currency: str
    prices: list[PricePublic]


class PriceQuote(ResponseModel):
    """What one delivery to `to` would be estimated to cost."""

    provider: str
    channel: Channel
    country: str | None
    number_type: str | None
    units: int
    unit: str
    unit_price: str
    estimate: str
    currency: str
    source: PriceSource = Field(description="table, default, override or free.")
    flagged: bool = Field(description="The provider's default price was used (no country row).")
