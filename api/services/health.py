"""Readiness: Temporal answers a health check and the store answers a trivial query,
each within the health timeout."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import text
from temporalio.client import Client

from api.services.verification_workflows import Timeouts
from otp.store import Store

logger = logging.getLogger("otp.api")


async def temporal_ok(client: Client | None, timeouts: Timeouts) -> bool:
    if client is None:
        return False
    try:
        async with asyncio.timeout(timeouts.health.total_seconds()):
            return bool(await client.service_client.check_health(timeout=timeouts.health))
    except Exception as exc:
        logger.warning("readiness: temporal unavailable", extra={"error": type(exc).__name__})
        return False


async def store_ok(store: Store | None, timeouts: Timeouts) -> bool:
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


async def readiness(
    client: Client | None, store: Store | None, timeouts: Timeouts
) -> dict[str, str]:
    """`ok` or `unavailable` per dependency (checked at the same time)."""
    temporal, stored = await asyncio.gather(
        temporal_ok(client, timeouts), store_ok(store, timeouts)
    )
    return {
        "temporal": "ok" if temporal else "unavailable",
        "store": "ok" if stored else "unavailable",
    }
