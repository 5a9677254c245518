"""Queries of the Twilio Verify v2 compatible API: its services and its verification lookup.

A service (`VA...`) belongs to one application and holds configuration only. The
verifications started through a service carry its sid as their `client_ref`, so "the
verification of this destination on this service" is one indexed query of the event log
(`verifications` joined to `verification_destinations` by keyed hash): no mapping table.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists
from sqlmodel import col, select

from otp.store import Store
from otp.store.tables import (
    Application,
    TwilioVerifyService,
    VerificationDestination,
    VerificationRecord,
    utcnow,
)

SERVICE_SID_PREFIX = "VA"


def new_service_sid() -> str:
    """`VA` + 32 lowercase hex characters of 128 random bits."""
    return SERVICE_SID_PREFIX + secrets.token_hex(16)


async def create_service(
    store: Store, *, application_id: str, fields: dict[str, Any]
) -> TwilioVerifyService:
    now = utcnow()
    row = TwilioVerifyService(
        sid=new_service_sid(),
        application_id=application_id,
        created_at=now,
        updated_at=now,
        **fields,
    )
    async with store.session() as session:
        session.add(row)
        await session.commit()
    return row


async def get_service(store: Store, *, application_id: str, sid: str) -> TwilioVerifyService | None:
    async with store.session() as session:
        row = await session.get(TwilioVerifyService, sid)
    return row if row is not None and row.application_id == application_id else None


async def list_services(
    store: Store, *, application_id: str, offset: int, limit: int
) -> list[TwilioVerifyService]:
    """A page of the application's services, oldest first."""
    query = (
        select(TwilioVerifyService)
        .where(col(TwilioVerifyService.application_id) == application_id)
        .order_by(col(TwilioVerifyService.created_at), col(TwilioVerifyService.sid))
        .offset(offset)
        .limit(limit)
    )
    async with store.session() as session:
        return list((await session.exec(query)).all())


async def update_service(
    store: Store, *, application_id: str, sid: str, fields: dict[str, Any]
) -> TwilioVerifyService | None:
    async with store.session() as session:
        row = await session.get(TwilioVerifyService, sid)
        if row is None or row.application_id != application_id:
            return None
        for name, value in fields.items():
            if name == "options":
                value = {**row.options, **value}
            setattr(row, name, value)
        row.updated_at = utcnow()
        session.add(row)
        await session.commit()
        await session.refresh(row)
    return row


async def delete_service(store: Store, *, application_id: str, sid: str) -> bool:
    async with store.session() as session:
        row = await session.get(TwilioVerifyService, sid)
        if row is None or row.application_id != application_id:
            return False
        await session.delete(row)
        await session.commit()
    return True


async def latest_verification_id(
    store: Store,
    *,
    application_id: str,
    mode: str,
    service_sid: str,
    destination_hash: str,
) -> str | None:
    """The id of the newest verification of a destination started through a service."""
    query = (
        select(VerificationRecord.id)
        .join(
            VerificationDestination,
            col(VerificationRecord.id) == col(VerificationDestination.verification_id),
        )
        .where(
            col(VerificationDestination.destination_hash) == destination_hash,
            col(VerificationRecord.client_ref) == service_sid,
            col(VerificationRecord.application_id) == application_id,
            col(VerificationRecord.mode) == mode,
        )
        .order_by(col(VerificationRecord.created_at).desc())
        .limit(1)
    )
    async with store.session() as session:
        return (await session.exec(query)).first()


async def purge_orphan_services(store: Store, *, now: datetime | None = None) -> int:
    """Services whose application no longer exists (services live as long as it does)."""
    s, a = TwilioVerifyService.__table__.c, Application.__table__.c  # type: ignore[attr-defined]
    async with store.writing() as conn:
        result = await conn.execute(
            delete(TwilioVerifyService.__table__).where(  # type: ignore[attr-defined]
                ~exists().where(a.id == s.application_id)
            )
        )
    return int(result.rowcount or 0)
