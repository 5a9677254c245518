"""The two databases the store supports, for tests that must pass on both.

SQLite is always there. PostgreSQL is used when reachable (`OTP_TEST_POSTGRES_URL`,
default `postgresql+asyncpg://postgres@127.0.0.1:5432/test`): each test gets its own
database, cloned from a migrated template made once per session, and dropped after.
When PostgreSQL is not reachable those tests are skipped with a reason saying so.
"""

from __future__ import annotations

import asyncio
import os
import uuid

import asyncpg

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    return os.environ.get("OTP_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


async def postgres_reachable(url: str) -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        conn = await asyncio.wait_for(asyncpg.connect(_dsn(url)), timeout=3)
    except Exception as exc:
        return f"PostgreSQL not reachable at {url.split('@')[-1]} ({type(exc).__name__})"
    await conn.close()
    return None


async def create_database(url: str, *, template: str | None = None) -> str:
    name = f"otp_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(_dsn(url))
    try:
        suffix = f" TEMPLATE {template}" if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{suffix}')
    finally:
        await conn.close()
    return name


async def drop_database(url: str, name: str) -> None:
    conn = await asyncpg.connect(_dsn(url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
