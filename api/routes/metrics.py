"""GET /metrics: the API process's Prometheus metrics (text exposition format).

With `OTP_METRICS_TOKEN` set, scrapers send `Authorization: Bearer <token>`; without it
the endpoint is open, so serve it on an internal network only (the metrics hold no
personal data, but they do show traffic volumes). Left out of the OpenAPI document: it
is for operators, not API clients.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response

from api.deps import get_settings
from api.problems import MetricsUnauthorized
from otp.observability import metrics

router = APIRouter(tags=["health"])


def _authorised(request: Request) -> bool:
    token = get_settings(request).metrics_token
    if token is None:
        return True
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    expected = token.get_secret_value().encode()
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), expected)


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request) -> Response:
    """The Prometheus text exposition of this process's metrics."""
    if not _authorised(request):
        raise MetricsUnauthorized()
    body, content_type = metrics.exposition()
    return Response(content=body, media_type=content_type)
