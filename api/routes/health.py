"""Liveness (`/healthz`) and readiness (`/readyz`) probes; no authentication."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request
from sqlalchemy import text

from api.errors import ServiceUnavailable
from api.schemas import HealthStatus, ReadinessStatus, problem_responses
from api.service import Timeouts
from otp.store import Store

logger = logging.getLogger("otp.api")

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthStatus, summary="Liveness")
async def healthz() -> HealthStatus:
    """The process is up (no dependency is checked)."""
    return HealthStatus(status="ok")


async def _temporal_ok(request: Request, timeouts: Timeouts) -> bool:
    client = request.app.state.client
    if client is None:
        return False
    try:
        async with asyncio.timeout(timeouts.health.total_seconds()):
            return bool(await client.service_client.check_health(timeout=timeouts.health))
    except Exception as exc:
        logger.warning("readiness: temporal unavailable", extra={"error": type(exc).__name__})
        return False


async def _store_ok(store: Store | None, timeouts: Timeouts) -> bool:
    if store is None:
        return False
    try:
        async with asyncio.timeout(timeouts.health.total_seconds()):
            async with store.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        return True
    except Exception as exc:
        logger.warning("readiness: store unavailable", extra={"error": type(exc).__name__})
        return False


@router.get(
    "/readyz",
    response_model=ReadinessStatus,
    summary="Readiness",
    responses=problem_responses(503),
)
async def readyz(request: Request) -> ReadinessStatus:
    """Temporal answers a health check and the store answers a trivial query."""
    timeouts: Timeouts = request.app.state.timeouts
    temporal, store = await asyncio.gather(
        _temporal_ok(request, timeouts), _store_ok(request.app.state.store, timeouts)
    )
    checks = {
        "temporal": "ok" if temporal else "unavailable",
        "store": "ok" if store else "unavailable",
    }
    if not (temporal and store):
        raise ServiceUnavailable("A dependency is not ready.", checks=checks)
    return ReadinessStatus(status="ok", checks=checks)
