"""Queries of the per-application provider accounts (`provider_accounts`).

One account per application and provider; replacing it keeps its id and raises its
`version` (what the worker's adapter cache keys on). Secrets arrive sealed and leave sealed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete
from sqlmodel import col, select

from otp.domain.ids import random_id
from otp.store import Store
from otp.store.tables import ProviderAccount, utcnow

ACCOUNT_ID_PREFIX = "pa_"
ACCOUNT_ID_RE = re.compile(r"^pa_[a-z2-7]{24}$")


def new_account_id() -> str:
    """`pa_` + 24 random base32 characters (120 bits)."""
    return random_id(ACCOUNT_ID_PREFIX, random_bytes=15)


async def list_accounts(store: Store, *, application_id: str) -> Sequence[ProviderAccount]:
    async with store.session() as session:
        result = await session.exec(
            select(ProviderAccount)
            .where(ProviderAccount.application_id == application_id)
            .order_by(col(ProviderAccount.provider))
        )
        return result.all()


async def get_account(
    store: Store, *, application_id: str, provider: str
) -> ProviderAccount | None:
    async with store.session() as session:
        result = await session.exec(
            select(ProviderAccount).where(
                ProviderAccount.application_id == application_id,
                ProviderAccount.provider == provider,
            )
        )
        return result.first()


async def get_account_by_id(store: Store, *, account_id: str) -> ProviderAccount | None:
    async with store.session() as session:
        return await session.get(ProviderAccount, account_id)


async def put_account(
    store: Store,
    *,
    application_id: str,
    provider: str,
    settings: dict[str, Any],
    secrets_sealed: str,
    secret_hints: dict[str, Any],
) -> tuple[ProviderAccount, bool]:
    """Create or replace the account; (row, created)."""
    now = utcnow()
    async with store.session() as session:
        result = await session.exec(
            select(ProviderAccount).where(
                ProviderAccount.application_id == application_id,
                ProviderAccount.provider == provider,
            )
        )
        row = result.first()
        created = row is None
        if row is None:
            row = ProviderAccount(
                id=new_account_id(),
                application_id=application_id,
                provider=provider,
                created_at=now,
            )
        else:
            row.version += 1
        row.settings = settings
        row.secrets_sealed = secrets_sealed
        row.secret_hints = secret_hints
        row.updated_at = now
        session.add(row)
        await session.commit()
        await session.refresh(row)
    return row, created


async def delete_account(store: Store, *, application_id: str, provider: str) -> bool:
    t = ProviderAccount.__table__.c  # type: ignore[attr-defined]
    async with store.writing() as conn:
        result = await conn.execute(
            delete(ProviderAccount.__table__).where(  # type: ignore[attr-defined]
                t.application_id == application_id, t.provider == provider
            )
        )
    return bool(result.rowcount)
