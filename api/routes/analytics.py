"""/v1/analytics: conversion and delivery figures over a time range."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AuthDep, StoreDep
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
            pattern=r"^(day|channel|country)(,(day|channel|country))*$",
            description="Comma-separated: any of day, channel (the first step's), country.",
        ),
    ] = "day",
) -> AnalyticsReport:
    """Started, delivered, approved, expired and failed verifications; conversion rate
    (approved ÷ started), delivery rate, fallback rate, wrong-code rate and time to verify
    (p50/p95), in total and per group. Days are UTC."""
    return await analytics_service.report(
        store,
        principal=principal,
        created_after=created_after,
        created_before=created_before,
        group_by=group_by,
    )
