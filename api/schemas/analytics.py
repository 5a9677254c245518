"""Conversion and delivery figures over a time range."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from api.schemas.base import ResponseModel


class AnalyticsFigures(ResponseModel):
    day: str | None = None
    channel: str | None = None
    country: str | None = None
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


class AnalyticsReport(ResponseModel):
    created_after: datetime
    created_before: datetime
    group_by: list[str]
    totals: AnalyticsFigures
    groups: list[AnalyticsFigures]
