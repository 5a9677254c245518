"""Queries of the web console's tables: users, server-side sessions and the audit log.

Users keep only an argon2 hash of their password (hashing is `api.console.services`'
job). A session row is keyed by the SHA-256 of the browser's token, never the token. An
audit entry's details are written by the console without secrets, keys, codes or full
destinations; this module stores what it is given and cuts strings to the columns' size.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from otp.domain.ids import random_id
from otp.store import Store
from otp.store.tables import ConsoleAuditEntry, ConsoleSession, ConsoleUser, utcnow

USER_ID_PREFIX = "usr_"
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
ROLES = ("admin", "support")


class UserExistsError(ValueError):
    """A console user of that name exists already."""


def new_user_id() -> str:
    """`usr_` + 24 random base32 characters (120 bits)."""
    return random_id(USER_ID_PREFIX, random_bytes=15)


async def create_user(store: Store, *, username: str, role: str, password_hash: str) -> ConsoleUser:
    """A new enabled user; UserExistsError when the name is taken."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    row = ConsoleUser(id=new_user_id(), username=username, role=role, password_hash=password_hash)
    async with store.write_guard(), store.session() as session:
        session.add(row)
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
            raise UserExistsError(username) from None
        await session.refresh(row)
    return row


async def get_user_by_name(store: Store, *, username: str) -> ConsoleUser | None:
    async with store.session() as session:
        query = select(ConsoleUser).where(ConsoleUser.username == username)
        return (await session.exec(query)).first()


async def list_users(store: Store) -> list[ConsoleUser]:
    """Every user, by name."""
    async with store.session() as session:
        query = select(ConsoleUser).order_by(col(ConsoleUser.username))
        return list((await session.exec(query)).all())


async def count_users(store: Store) -> int:
    return len(await list_users(store))


async def set_password_hash(store: Store, *, user_id: str, password_hash: str) -> None:
    """Replace a user's hash (a rehash on sign-in, or a new password)."""
    async with store.writing() as conn:
        await conn.execute(
            update(ConsoleUser.__table__)  # type: ignore[attr-defined]
            .where(ConsoleUser.__table__.c.id == user_id)  # type: ignore[attr-defined]
            .values(password_hash=password_hash)
        )


async def set_disabled(store: Store, *, username: str, disabled: bool) -> bool:
    """Disable (or enable) a user and end its sessions; False when there is no such user."""
    user = await get_user_by_name(store, username=username)
    if user is None:
        return False
    u, s = ConsoleUser.__table__.c, ConsoleSession.__table__.c  # type: ignore[attr-defined]
    async with store.writing() as conn:
        await conn.execute(
            update(ConsoleUser.__table__)  # type: ignore[attr-defined]
            .where(u.id == user.id)
            .values(disabled=disabled)
        )
        if disabled:
            await conn.execute(
                delete(ConsoleSession.__table__).where(s.user_id == user.id)  # type: ignore[attr-defined]
            )
    return True


# ------------------------------------------------------------------------ sessions
async def create_session(
    store: Store,
    *,
    session_id: str,
    user_id: str,
    csrf_token: str,
    expires_at: datetime,
    now: datetime | None = None,
) -> ConsoleSession:
    when = now or utcnow()
    row = ConsoleSession(
        id=session_id,
        user_id=user_id,
        csrf_token=csrf_token,
        created_at=when,
        last_seen_at=when,
        expires_at=expires_at,
    )
    async with store.write_guard(), store.session() as session:
        session.add(row)
        await session.commit()
        await session.refresh(row)
    return row


async def get_session(
    store: Store, *, session_id: str
) -> tuple[ConsoleSession, ConsoleUser] | None:
    """The session and its user, in one query (None: no such session)."""
    query = (
        select(ConsoleSession, ConsoleUser)
        .join(ConsoleUser, col(ConsoleUser.id) == col(ConsoleSession.user_id))
        .where(ConsoleSession.id == session_id)
    )
    async with store.session() as session:
        found = (await session.exec(query)).first()
    return None if found is None else (found[0], found[1])


async def touch_session(store: Store, *, session_id: str, now: datetime) -> None:
    """Record a request of the session (its idle timeout counts from here)."""
    s = ConsoleSession.__table__.c  # type: ignore[attr-defined]
    async with store.writing() as conn:
        await conn.execute(
            update(ConsoleSession.__table__)  # type: ignore[attr-defined]
            .where(s.id == session_id)
            .values(last_seen_at=now)
        )


async def delete_session(store: Store, *, session_id: str) -> None:
    s = ConsoleSession.__table__.c  # type: ignore[attr-defined]
    async with store.writing() as conn:
        await conn.execute(delete(ConsoleSession.__table__).where(s.id == session_id))  # type: ignore[attr-defined]


async def purge_sessions(store: Store, *, idle: timedelta, now: datetime) -> int:
    """Sessions past their expiry or idle for longer than `idle`: rows deleted."""
    s = ConsoleSession.__table__.c  # type: ignore[attr-defined]
    async with store.writing() as conn:
        result = await conn.execute(
            delete(ConsoleSession.__table__).where(  # type: ignore[attr-defined]
                or_(s.expires_at < now, s.last_seen_at < now - idle)
            )
        )
    return int(result.rowcount or 0)


# ----------------------------------------------------------------------- audit log
async def add_audit(
    store: Store,
    *,
    username: str,
    action: str,
    target: str = "",
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> ConsoleAuditEntry:
    row = ConsoleAuditEntry(
        at=now or utcnow(),
        username=username[:64],
        action=action[:64],
        target=target[:200],
        details=dict(details or {}),
    )
    async with store.write_guard(), store.session() as session:
        session.add(row)
        await session.commit()
        await session.refresh(row)
    return row


async def list_audit(
    store: Store, *, limit: int = 100, before_id: int | None = None
) -> list[ConsoleAuditEntry]:
    """Newest first; `before_id`: the last id of the previous page."""
    query = select(ConsoleAuditEntry)
    if before_id is not None:
        query = query.where(col(ConsoleAuditEntry.id) < before_id)
    query = query.order_by(col(ConsoleAuditEntry.id).desc()).limit(limit)
    async with store.session() as session:
        return list((await session.exec(query)).all())


async def purge_audit(store: Store, *, older_than: timedelta, now: datetime) -> int:
    a = ConsoleAuditEntry.__table__.c  # type: ignore[attr-defined]
    async with store.writing() as conn:
        result = await conn.execute(
            delete(ConsoleAuditEntry.__table__).where(a.at < now - older_than)  # type: ignore[attr-defined]
        )
    return int(result.rowcount or 0)
