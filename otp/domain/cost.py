"""Types of what a delivery costs: the estimate from the price table, the price the
provider reported, and the workflow's view of both.

Amounts are integer micro-units of the deployment's currency (1 USD = 1 000 000 micros):
exact in every payload, store and limiter, and never a float. `otp.cost.money` parses
and formats them.
"""

from __future__ import annotations

from enum import StrEnum

from otp.domain.base import PayloadModel


class PriceSource(StrEnum):
    """Where a delivery's price came from."""

    # The price table's row for the destination's country (and number type).
    TABLE = "table"
    # The provider's default price: the table has no row for the destination's country.
    # Flagged: the estimate may be far off.
    DEFAULT = "default"
    # The application's own price for that route (admin API or `otp prices set`).
    OVERRIDE = "override"
    # Nothing is charged: the sandbox (test mode).
    FREE = "free"


class DeliveryCost(PayloadModel):
    """The cost of one delivery: always the estimate, and the provider's price once known.

    `amount_micros` is what counts: the provider's price when it reported one in the
    deployment's currency, else the estimate.
    """

    currency: str
    estimate_micros: int
    source: PriceSource
    # What was counted (SMS segments, messages, call minutes) and at what unit price.
    units: int = 1
    unit: str = "message"
    unit_price_micros: int = 0
    # The price the provider reported (its receipt or a later fetch), in its currency.
    reported_micros: int | None = None
    reported_currency: str | None = None

    @property
    def amount_micros(self) -> int:
        if self.reported_micros is not None and self.reported_currency == self.currency:
            return self.reported_micros
        return self.estimate_micros

    @property
    def flagged(self) -> bool:
        """The estimate used the provider's default price (unknown country)."""
        return self.source is PriceSource.DEFAULT


class FetchPricesInput(PayloadModel):
    """Ask providers for the prices of recent deliveries that have none yet."""

    # Deliveries sent at least this long ago (providers price a message once it settled)
    # and at most `max_age_s` ago; at most `limit` of them per run.
    min_age_s: int = 120
    max_age_s: int = 7 * 86_400
    limit: int = 200


class FetchPricesResult(PayloadModel):
    asked: int = 0
    priced: int = 0
