"""Risk blocks set by an operator through the admin API (conversion monitoring sets the
automatic ones in the worker). Creates read them through `RiskCaches`: a change here
clears this process's cache."""

from __future__ import annotations

import logging
from datetime import timedelta

from api.problems import RiskBlockNotFound
from api.schemas.risk_blocks import RiskBlockCreate
from api.services.applications import application_id_of, require_application
from api.services.risk_caches import RiskCaches
from otp.domain import Mode
from otp.store import Store, risk_blocks
from otp.store.tables import RiskBlock, utcnow

logger = logging.getLogger("otp.api")


async def list_blocks(
    store: Store,
    *,
    application_id: str,
    mode: Mode | None,
    scope: risk_blocks.BlockScope | None,
    recent_days: int,
) -> list[RiskBlock]:
    """Blocks in force, and those made in the last `recent_days` (lifted or expired)."""
    await require_application(store, application_id)
    return await risk_blocks.list_blocks(
        store,
        application_id=application_id,
        mode=mode,
        scope=scope,
        since=utcnow() - timedelta(days=recent_days),
    )


async def create_block(
    store: Store, caches: RiskCaches, *, application_id: str, body: RiskBlockCreate
) -> RiskBlock:
    await require_application(store, application_id)
    block = await risk_blocks.create_block(
        store,
        application_id=application_id,
        mode=body.mode,
        scope=body.scope,
        value=body.value,
        reason=body.reason,
        automatic=False,
        duration_s=body.duration_s,
    )
    caches.blocks.clear()
    logger.info(
        "risk block created",
        extra={
            "event": "risk_block.created",
            "application_id": application_id,
            "block_id": block.id,
            "mode": block.mode,
            "scope": block.scope,
            "value": block.value,
            "automatic": False,
        },
    )
    return block


async def lift_block(
    store: Store, caches: RiskCaches, *, application_id: str, block_id: str, lifted_by: str
) -> RiskBlock:
    """End the block now (a block already ended is returned as it is)."""
    if not risk_blocks.BLOCK_ID_RE.match(block_id):
        raise RiskBlockNotFound()
    lifted = await risk_blocks.lift_block(
        store,
        block_id=block_id,
        application_id=application_id_of(application_id),
        lifted_by=lifted_by,
    )
    if lifted is None:
        raise RiskBlockNotFound()
    caches.blocks.clear()
    logger.info(
        "risk block lifted",
        extra={
            "event": "risk_block.lifted",
            "application_id": application_id,
            "block_id": lifted.id,
            "scope": lifted.scope,
            "value": lifted.value,
        },
    )
    return lifted
