"""Liveness (`/healthz`) and readiness (`/readyz`) probes; no authentication."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.problems import ServiceUnavailable
from api.schemas.health import HealthStatus, ReadinessStatus
from api.schemas.problem import problem_responses
from api.services import health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthStatus, summary="Liveness")
async def healthz() -> HealthStatus:
    """The process is up (no dependency is checked)."""
    return HealthStatus(status="ok")


@router.get(
    "/readyz",
    response_model=ReadinessStatus,
    summary="Readiness",
    responses=problem_responses(503),
)
async def readyz(request: Request) -> ReadinessStatus:
    """Temporal answers a health check and the store answers a trivial query."""
    state = request.app.state
    checks = await health.readiness(state.client, state.store, state.timeouts)
    if any(value != "ok" for value in checks.values()):
        raise ServiceUnavailable("A dependency is not ready.", checks=checks)
    return ReadinessStatus(status="ok", checks=checks)
