"""Conversion, delivery and cost figures over a time range.

Amounts are decimal strings in the deployment's currency (`currency`), never floats."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from api.schemas.base import ResponseModel


class AnalyticsFigures(ResponseModel):
    day: str | None = None
    channel: str | None = None
    country: str | None = None
    provider: str | None = Field(
        default=None, description="Grouped by provider: the provider of the deliveries."
    )
    started: int
    delivered: int
    approved: int
    expired: int
    failed: int = Field(description="Undeliverable or out of attempts.")
    canceled: int
    blocked: int
    pending: int
    conversion_rate: float | None = Field(description="approved / started.")
    delivery_rate: float | None = Field(description="delivered / started.")
    fallback_rate: float | None = Field(description="Share of verifications that fell back.")
    wrong_code_rate: float | None = Field(description="Wrong checks / all checks.")
    time_to_verify_p50_ms: int | None = None
    time_to_verify_p95_ms: int | None = None
    currency: str = Field(description="ISO 4217 code of every amount (the deployment's).")
    cost: str = Field(
        description="What the deliveries cost: the provider's price where it reported one, "
        "the estimate otherwise.",
        examples=["12.4150"],
    )
    cost_per_verification: str | None = Field(description="cost / started.")
    cost_per_approved_verification: str | None = Field(
        description="cost / approved: what one successful verification costs, with the "
        "deliveries of those never approved included."
    )
    unapproved_cost: str = Field(description="Cost of verifications not approved (yet).")
    unapproved_cost_share: float | None = Field(description="unapproved_cost / cost.")
    deliveries: int = Field(description="Costed deliveries (every send, fallback, resend).")
    deliveries_priced_by_provider: int = Field(
        description="Deliveries whose cost is the provider's reported price."
    )
    deliveries_estimated: int = Field(description="Deliveries costed by the price table.")
    estimates_flagged: int = Field(
        description="Estimates from a provider's default price (the country had no row)."
    )


class AnalyticsReport(ResponseModel):
    created_after: datetime
    created_before: datetime
    group_by: list[str]
    totals: AnalyticsFigures
    groups: list[AnalyticsFigures]
