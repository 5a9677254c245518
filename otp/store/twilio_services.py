"""Queries of the Twilio Verify v2 compatible API: its services and its verification lookup.

A service (`VA...`) belongs to one application and holds configuration only. The
verifications started through a service carry its sid as their `client_ref`, so "the
verification of this destination on this service" is one indexed query of the event log
(`verifications` joined to `verification_destinations` by keyed hash): no mapping table.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func
from sqlmodel import col, select

from otp.store import Store
from otp.store.tables import (
    TwilioVerifyService,
    VerificationDestination,
    VerificationEvent,
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


# ------------------------------------------------------------------- attempts
@dataclass(frozen=True)
class AttemptFilter:
    """Which send attempts of an application's service verifications to read."""

    application_id: str
    mode: str
    service_sid: str | None = None
    verification_id: str | None = None
    channel: str | None = None
    country: str | None = None
    destination_hash: str | None = None
    converted: bool | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True)
class AttemptRow:
    """One send attempt (an event of the log) and what its verification became."""

    event_id: int
    verification_id: str
    service_sid: str
    channel: str | None
    to_masked: str | None
    occurred_at: datetime
    converted: bool


def _attempt_conditions(f: AttemptFilter) -> list[ColumnElement[bool]]:
    event, record = VerificationEvent, VerificationRecord
    where: list[ColumnElement[bool]] = [
        col(event.type) == "send_attempted",
        col(event.application_id) == f.application_id,
        col(event.mode) == f.mode,
        col(TwilioVerifyService.application_id) == f.application_id,
    ]
    if f.service_sid is not None:
        where.append(col(record.client_ref) == f.service_sid)
    if f.verification_id is not None:
        where.append(col(event.verification_id) == f.verification_id)
    if f.channel is not None:
        where.append(col(event.channel) == f.channel)
    if f.country is not None:
        where.append(col(event.country) == f.country)
    if f.destination_hash is not None:
        where.append(col(event.destination_hash) == f.destination_hash)
    if f.converted is not None:
        approved = col(record.status) == "approved"
        where.append(approved if f.converted else ~approved)
    if f.created_after is not None:
        where.append(col(event.occurred_at) >= f.created_after)
    if f.created_before is not None:
        where.append(col(event.occurred_at) < f.created_before)
    return where


def _joined(query: Any) -> Any:
    """Events -> their verification -> the service it was started through."""
    return query.join(
        VerificationRecord,
        col(VerificationRecord.id) == col(VerificationEvent.verification_id),
    ).join(
        TwilioVerifyService,
        col(TwilioVerifyService.sid) == col(VerificationRecord.client_ref),
    )


async def list_attempts(
    store: Store, *, where: AttemptFilter, offset: int, limit: int, event_id: int | None = None
) -> list[AttemptRow]:
    """A page of send attempts, newest first (or the one with `event_id`)."""
    query = _joined(
        select(VerificationEvent, VerificationRecord.client_ref, VerificationRecord.status)
    )
    conditions: Sequence[ColumnElement[bool]] = _attempt_conditions(where)
    if event_id is not None:
        conditions = [*conditions, col(VerificationEvent.id) == event_id]
    query = (
        query.where(*conditions)
        .order_by(col(VerificationEvent.occurred_at).desc(), col(VerificationEvent.id).desc())
        .offset(offset)
        .limit(limit)
    )
    async with store.session() as session:
        rows = (await session.exec(query)).all()
    return [
        AttemptRow(
            event_id=int(event.id or 0),
            verification_id=event.verification_id,
            service_sid=client_ref or "",
            channel=event.channel,
            to_masked=event.to_masked,
            occurred_at=event.occurred_at,
            converted=status == "approved",
        )
        for event, client_ref, status in rows
    ]


async def attempts_summary(store: Store, *, where: AttemptFilter) -> tuple[int, int]:
    """(send attempts, attempts whose verification was approved)."""
    approved = func.sum(case((col(VerificationRecord.status) == "approved", 1), else_=0))
    query = _joined(select(func.count(), approved).select_from(VerificationEvent)).where(
        *_attempt_conditions(where)
    )
    async with store.session() as session:
        total, converted = (await session.exec(query)).one()
    return int(total or 0), int(converted or 0)
