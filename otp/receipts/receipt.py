"""One delivery status change reported by a provider, as every receipt parser returns it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from otp.domain import DeliveryStatus

Params = Mapping[str, str] | Iterable[tuple[str, str]]


class DeliveryReceipt(NamedTuple):
    """One delivery status change, as (provider_message_id, status, error_code), and the
    price the provider reported with it (positive micros, ISO 4217), where it did."""

    provider_message_id: str
    status: DeliveryStatus
    error_code: str | None
    price_micros: int | None = None
    price_currency: str | None = None
