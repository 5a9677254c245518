"""/console/dashboard: the analytics report of an application and mode over a range,
as figures and charts (by day, country and channel). Admins and support alike."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from api.console.services.scope import principal_for
from api.console.web import UserDep, render
from api.deps import SettingsDep, StoreDep
from api.services import analytics
from api.services.verification_workflows import now_utc

router = APIRouter(prefix="/console", include_in_schema=False)

SERIES = ("started", "delivered", "approved", "expired")


@router.get("/dashboard")
async def dashboard(
    request: Request,
    user: UserDep,
    store: StoreDep,
    settings: SettingsDep,
    app: Annotated[str, Query(max_length=64)] = "default",
    mode: Annotated[Literal["test", "live"], Query()] = "test",
    days: Annotated[int, Query(ge=1, le=366)] = 7,
) -> Response:
    principal = await principal_for(store, application_id=app, mode=mode)
    end = now_utc()
    report = await analytics.report(
        store,
        principal=principal,
        created_after=end - timedelta(days=days),
        created_before=end,
        group_by="day,channel,country",
        currency=settings.currency,
    )
    by_day: dict[str, dict[str, int]] = {}
    by_country: dict[str, dict[str, int]] = {}
    by_channel: dict[str, dict[str, int]] = {}
    for group in report.groups:
        for key, table in (
            (group.day, by_day),
            (group.country, by_country),
            (group.channel, by_channel),
        ):
            row = table.setdefault(key or "?", dict.fromkeys(SERIES, 0))
            for name in SERIES:
                row[name] += getattr(group, name)

    def chart(table: dict[str, dict[str, int]]) -> str:
        labels = sorted(table)
        return json.dumps(
            {"labels": labels, "series": {n: [table[k][n] for k in labels] for n in SERIES}}
        )

    context = {
        "app": app,
        "mode": mode,
        "days": days,
        "totals": report.totals,
        "cost_per_approved": (
            f"{report.totals.cost_per_approved_verification} {report.totals.currency}"
            if report.totals.cost_per_approved_verification is not None
            else None
        ),
        "charts": {
            "day": chart(by_day),
            "country": chart(by_country),
            "channel": chart(by_channel),
        },
        "by_country": sorted(by_country.items()),
    }
    return render(request, "dashboard.html", context, console=user)
