"""The store: SQLModel tables and keyword-only queries (SQLite by default, PostgreSQL in production).

The schema is owned by Alembic migrations (`otp/migrations`); `Store.migrate()` brings a
database to the latest revision and is safe to run from several processes at once.
The sandbox inbox is the simulated phone of test mode: the one place where a code may
be read, and only by test-mode keys.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import event, func
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from otp.store.tables import (
    ApiKey,
    Application,
    IdempotencyRecord,
    SandboxMessage,
    SandboxMessageBase,
    SandboxMessagePublic,
    VerificationDestination,
    VerificationEvent,
    VerificationRecord,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
    utcnow,
)

__all__ = [
    "ApiKey",
    "Application",
    "IdempotencyRecord",
    "SandboxMessage",
    "SandboxMessageBase",
    "SandboxMessagePublic",
    "Store",
    "VerificationDestination",
    "VerificationEvent",
    "VerificationRecord",
    "WebhookAttempt",
    "WebhookEndpoint",
    "WebhookMessage",
    "make_engine",
    "utcnow",
]


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str) -> AsyncEngine:
    # hide_parameters: a failed statement's message must not carry its bound values
    # (a message body with its code, a full destination, a sealed secret).
    engine = create_async_engine(
        url, pool_pre_ping=not url.startswith("sqlite"), hide_parameters=True
    )
    if url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


_MIGRATION_LOCKS: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}


def _migration_lock() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _MIGRATION_LOCKS.get(loop)
    if lock is None:
        lock = _MIGRATION_LOCKS[loop] = asyncio.Lock()
    return lock


class Store:
    """Async access to the tables; one per process, shared by requests and activities."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.is_sqlite = url.startswith("sqlite")
        self._write_lock: asyncio.Lock | None = None

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction. On SQLite, one at a time per process: SQLite allows one
        writer anyway, and waiting here wakes at once where SQLite's busy handler sleeps
        in steps of up to 100 ms (measured: it halved throughput under load)."""
        async with self.write_guard(), self.engine.begin() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def write_guard(self) -> AsyncIterator[None]:
        """Hold around a session's writes and commit (see `writing`); free on PostgreSQL."""
        if not self.is_sqlite:
            yield
            return
        if self._write_lock is None:
            self._write_lock = asyncio.Lock()
        async with self._write_lock:
            yield

    async def migrate(self) -> None:
        """Bring the database to the latest migration.

        The API and the worker both call this at startup, possibly at the same moment on
        a fresh database: PostgreSQL serialises them with an advisory lock; on SQLite the
        loser of the race sees "already exists" or "locked" and tries again.
        """
        from otp.migrations import upgrade_head

        for attempt in range(5):
            try:
                # Alembic keeps module-global state: one migration at a time per process.
                async with _migration_lock(), self.engine.begin() as conn:
                    await conn.run_sync(upgrade_head)
                return
            except (OperationalError, ProgrammingError, IntegrityError):
                if attempt == 4:
                    raise
                await asyncio.sleep(0.2 * (attempt + 1))

    async def create_all(self) -> None:
        """Kept for callers of the first release: the same as `migrate()`."""
        await self.migrate()

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
        async with self.write_guard(), self.session() as session:
            session.add(row)
            try:
                await session.commit()
                return row
            except IntegrityError:
                await session.rollback()
        existing = await self.find_sandbox_message(idempotency_key=idempotency_key)
        if existing is None:  # pragma: no cover - the conflict was on another unique column
            raise RuntimeError("sandbox message conflict without an existing row")
        return existing

    async def last_sandbox_message_id(self) -> int:
        """The id of the newest sandbox message (0: none yet)."""
        async with self.session() as session:
            newest = (await session.exec(select(func.max(SandboxMessage.id)))).first()
        return int(newest or 0)

    async def sandbox_messages_after(
        self, last_id: int, *, limit: int = 500
    ) -> list[tuple[int, str, str, str]]:
        """(id, application_id, to, verification_id) of the messages after `last_id`, oldest
        first: what a long poll needs to know whom to wake."""
        query = (
            select(
                SandboxMessage.id,
                SandboxMessage.application_id,
                SandboxMessage.to,
                SandboxMessage.verification_id,
            )
            .where(col(SandboxMessage.id) > last_id)
            .order_by(col(SandboxMessage.id))
            .limit(limit)
        )
        async with self.session() as session:
            rows = (await session.exec(query)).all()
        return [(int(i or 0), a, t, v) for i, a, t, v in rows]

    async def find_sandbox_message(self, *, idempotency_key: str) -> SandboxMessage | None:
        """The sandbox message written for a delivery key, if any."""
        async with self.session() as session:
            return (
                await session.exec(
                    select(SandboxMessage).where(SandboxMessage.idempotency_key == idempotency_key)
                )
            ).first()

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
