"""/v1/analytics: conversion and delivery figures over a time range."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AuthDep, StoreDep
from api.errors import invalid, param_error
from api.schemas import AnalyticsFigures, AnalyticsReport, problem_responses
from api.service import now_utc
from otp.store import records as store_records

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])

GROUPS = ("day", "channel", "country")
MAX_RANGE = timedelta(days=366)
DEFAULT_RANGE = timedelta(days=7)


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
    end = created_before or now_utc()
    start = created_after or end - DEFAULT_RANGE
    for name, value in (("created_after", start), ("created_before", end)):
        if value.tzinfo is None:
            raise invalid([param_error("query", name, "must carry a time zone (e.g. Z)")])
    if start >= end:
        raise invalid([param_error("query", "created_after", "must be before created_before")])
    if end - start > MAX_RANGE:
        raise invalid([param_error("query", "created_after", "the range is at most 366 days")])
    groups = list(dict.fromkeys(group_by.split(",")))
    total, buckets = await store_records.analytics(
        store,
        application_id=principal.application_id,
        mode=principal.mode.value,
        created_from=start,
        created_to=end,
        group_by=groups,
    )
    return AnalyticsReport(
        created_after=start,
        created_before=end,
        group_by=groups,
        totals=AnalyticsFigures(**total.as_dict()),
        groups=[AnalyticsFigures(**b.as_dict()) for b in buckets],
    )
