"""/v1/analytics: conversion, delivery and cost figures over a time range."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AuthDep, SettingsDep, StoreDep
from api.schemas.analytics import AnalyticsReport
from api.schemas.problem import problem_responses
from api.services import analytics as analytics_service

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])


@router.get(
    "",
    response_model=AnalyticsReport,
    summary="Verification analytics",
    responses=problem_responses(401, 422),
)
async def analytics(
    principal: AuthDep,
    store: StoreDep,
    settings: SettingsDep,
    created_after: Annotated[
        datetime | None,
        Query(description="Start of the range (ISO 8601, inclusive); default 7 days ago."),
    ] = None,
    created_before: Annotated[
        datetime | None, Query(description="End of the range (exclusive); default now.")
    ] = None,
    group_by: Annotated[
        str,
        Query(
            pattern=r"^(day|channel|country|provider)(,(day|channel|country|provider))*$",
            description="Comma-separated: any of day, channel (the first step's), country, "
            "provider (the deliveries').",
        ),
    ] = "day",
) -> AnalyticsReport:
    """Started, delivered, approved, expired and failed verifications; conversion rate
    (approved ÷ started), delivery rate, fallback rate, wrong-code rate and time to verify
    (p50/p95), in total and per group. Days are UTC.

    Costs: total, per verification, per approved verification, the share spent on
    verifications never approved, and how the deliveries were priced (provider's price,
    estimate, estimate from a provider's default price). Grouped by provider, a
    verification counts for each provider that sent it something, with that provider's
    deliveries' cost only."""
    return await analytics_service.report(
        store,
        principal=principal,
        created_after=created_after,
        created_before=created_before,
        group_by=group_by,
        currency=settings.currency,
    )
