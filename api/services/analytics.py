"""Conversion, delivery and cost figures of the caller's verifications over a time range.

Costs are in the deployment's currency (`OTP_CURRENCY`); a delivery counts the provider's
reported price when it gave one in that currency, its estimate otherwise."""

from __future__ import annotations

from datetime import datetime, timedelta

from api.auth import Principal
from api.problems import invalid, param_error
from api.schemas.analytics import AnalyticsFigures, AnalyticsReport
from api.services.verification_workflows import now_utc
from otp.store import Store
from otp.store import records as store_records

MAX_RANGE = timedelta(days=366)
DEFAULT_RANGE = timedelta(days=7)


def time_range(
    created_after: datetime | None, created_before: datetime | None
) -> tuple[datetime, datetime]:
    """The range asked for (default: the last 7 days); 422 unless it is zoned, ordered
    and at most 366 days long."""
    end = created_before or now_utc()
    start = created_after or end - DEFAULT_RANGE
    for name, value in (("created_after", start), ("created_before", end)):
        if value.tzinfo is None:
            raise invalid([param_error("query", name, "must carry a time zone (e.g. Z)")])
    if start >= end:
        raise invalid([param_error("query", "created_after", "must be before created_before")])
    if end - start > MAX_RANGE:
        raise invalid([param_error("query", "created_after", "the range is at most 366 days")])
    return start, end


async def report(
    store: Store,
    *,
    principal: Principal,
    created_after: datetime | None,
    created_before: datetime | None,
    group_by: str,
    currency: str,
) -> AnalyticsReport:
    """Totals and per-group figures; `group_by` is a comma-separated list of `GROUPS`."""
    start, end = time_range(created_after, created_before)
    groups = list(dict.fromkeys(group_by.split(",")))
    total, buckets = await store_records.analytics(
        store,
        application_id=principal.application_id,
        mode=principal.mode.value,
        created_from=start,
        created_to=end,
        group_by=groups,
        currency=currency,
    )
    return AnalyticsReport(
        created_after=start,
        created_before=end,
        group_by=groups,
        totals=AnalyticsFigures(**total.as_dict()),
        groups=[AnalyticsFigures(**b.as_dict()) for b in buckets],
    )
