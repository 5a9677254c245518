"""The store: SQLModel tables and keyword-only queries (SQLite by default, PostgreSQL in production).

Only the sandbox inbox lives here so far. The sandbox inbox is the simulated phone of
test mode: the one place where a code may be read, and only by test-mode keys.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession


def utcnow() -> datetime:
    return datetime.now(UTC)


class SandboxMessageBase(SQLModel):
    message_id: str = Field(index=True, unique=True, max_length=64)
    verification_id: str = Field(index=True, max_length=64)
    application_id: str = Field(index=True, max_length=64)
    channel: str = Field(max_length=16)
    to: str = Field(index=True, max_length=320)
    subject: str = Field(default="", max_length=512)
    body: str
    created_at: datetime = Field(default_factory=utcnow)


class SandboxMessage(SandboxMessageBase, table=True):
    __tablename__ = "sandbox_messages"
    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True, max_length=255)


class SandboxMessagePublic(SandboxMessageBase):
    pass


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str) -> AsyncEngine:
    engine = create_async_engine(url, pool_pre_ping=not url.startswith("sqlite"))
    if url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


class Store:
    """Async access to the tables; one per process, shared by requests and activities."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)

    async def create_all(self) -> None:
        """Create missing tables. The API and the worker may both do it at the same moment
        on a fresh database: the loser of that race sees "already exists" and tries again."""
        for attempt in range(3):
            try:
                async with self.engine.begin() as conn:
                    await conn.run_sync(SQLModel.metadata.create_all)
                return
            except (OperationalError, ProgrammingError):
                if attempt == 2:
                    raise
                await asyncio.sleep(0.1)

    async def close(self) -> None:
        await self.engine.dispose()

    def session(self) -> AsyncSession:
        return AsyncSession(self.engine, expire_on_commit=False)

    async def add_sandbox_message(
        self,
        *,
        idempotency_key: str,
        message_id: str,
        verification_id: str,
        application_id: str,
        channel: str,
        to: str,
        subject: str,
        body: str,
    ) -> SandboxMessage:
        """Insert a sandbox message once per idempotency key; a repeat returns the first one."""
        row = SandboxMessage(
            idempotency_key=idempotency_key,
            message_id=message_id,
            verification_id=verification_id,
            application_id=application_id,
            channel=channel,
            to=to,
            subject=subject,
            body=body,
        )
        async with self.session() as session:
            session.add(row)
            try:
                await session.commit()
                return row
            except IntegrityError:
                await session.rollback()
        async with self.session() as session:
            existing = (
                await session.exec(
                    select(SandboxMessage).where(SandboxMessage.idempotency_key == idempotency_key)
                )
            ).first()
        if existing is None:  # pragma: no cover - the conflict was on another unique column
            raise RuntimeError("sandbox message conflict without an existing row")
        return existing

    async def list_sandbox_messages(
        self,
        *,
        application_id: str,
        to: str | None = None,
        verification_id: str | None = None,
        limit: int = 20,
    ) -> list[SandboxMessage]:
        """Newest first."""
        query = select(SandboxMessage).where(SandboxMessage.application_id == application_id)
        if to is not None:
            query = query.where(SandboxMessage.to == to)
        if verification_id is not None:
            query = query.where(SandboxMessage.verification_id == verification_id)
        query = query.order_by(col(SandboxMessage.id).desc()).limit(limit)
        async with self.session() as session:
            return list((await session.exec(query)).all())
