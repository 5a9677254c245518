"""Applications and their API keys in the store (keyword-only functions).

Keys are stored only as their SHA-256 (hex); outputs never carry the hash. The one
function that reads a key by hash (`find_api_key`) serves authentication.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import col, select

from otp.applications.keys import (
    hash_api_key,
    key_hint,
    new_api_key,
    new_application_id,
    new_key_id,
)
from otp.applications.model import (
    DEFAULT_APPLICATION_ID,
    ApiKeyPublic,
    ApplicationDefaults,
    ApplicationPolicy,
    ApplicationPublic,
    NewApiKey,
)
from otp.domain import Channel, Mode
from otp.risk.policy import RiskSettings
from otp.store import ApiKey, Application, Store, utcnow

# last_used_at is written at most this often per key (not on every request).
TOUCH_INTERVAL = timedelta(minutes=1)
_UNSET: Any = object()


class ApplicationNotFoundError(LookupError):
    """No application with this id."""


@dataclass(frozen=True)
class KeyMatch:
    """An active key found by its hash, with its application (for authentication)."""

    key_id: str
    mode: Mode
    last_used_at: datetime | None
    application: ApplicationPublic


def application_public(row: Application) -> ApplicationPublic:
    return ApplicationPublic(
        id=row.id,
        name=row.name,
        brand=row.brand,
        defaults=ApplicationDefaults.model_validate(row.defaults or {}),
        allowed_channels=[Channel(c) for c in row.allowed_channels or []],
        risk=RiskSettings.of(row.risk),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def api_key_public(row: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic(
        id=row.id,
        application_id=row.application_id,
        mode=Mode(row.mode),
        name=row.name,
        hint=row.hint,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def _policy_columns(policy: ApplicationPolicy) -> dict[str, Any]:
    return {
        "defaults": policy.defaults.model_dump(mode="json", exclude_none=True),
        "allowed_channels": [c.value for c in policy.allowed_channels],
    }


def _risk_column(risk: RiskSettings | None) -> dict[str, Any]:
    """Only what differs from the defaults: a later change of a default applies to every
    application that did not set it."""
    return {} if risk is None else risk.model_dump(mode="json", exclude_defaults=True)


# ------------------------------------------------------------------------ applications
async def create_application(
    store: Store,
    *,
    name: str,
    brand: str = "",
    defaults: ApplicationDefaults | None = None,
    allowed_channels: list[Channel] | None = None,
    application_id: str | None = None,
    risk: RiskSettings | None = None,
) -> ApplicationPublic:
    """Insert a new application (a fresh `app_...` id unless one is given)."""
    policy = ApplicationPolicy(
        defaults=defaults or ApplicationDefaults(), allowed_channels=allowed_channels or []
    )
    now = utcnow()
    row = Application(
        id=application_id or new_application_id(),
        name=name,
        brand=brand,
        created_at=now,
        updated_at=now,
        risk=_risk_column(risk),
        **_policy_columns(policy),
    )
    async with store.session() as session:
        session.add(row)
        await session.commit()
    return application_public(row)


async def get_application(store: Store, *, application_id: str) -> ApplicationPublic | None:
    async with store.session() as session:
        row = await session.get(Application, application_id)
    return None if row is None else application_public(row)


async def list_applications(
    store: Store, *, limit: int = 100, after: str | None = None
) -> list[ApplicationPublic]:
    """Oldest first; `after` (an id) pages on from the previous page's last row."""
    query = select(Application)
    if after is not None:
        async with store.session() as session:
            anchor = await session.get(Application, after)
        if anchor is not None:
            query = query.where(
                or_(
                    col(Application.created_at) > anchor.created_at,
                    (col(Application.created_at) == anchor.created_at)
                    & (col(Application.id) > anchor.id),
                )
            )
    query = query.order_by(col(Application.created_at), col(Application.id)).limit(limit)
    async with store.session() as session:
        rows = (await session.exec(query)).all()
    return [application_public(r) for r in rows]


async def update_application(
    store: Store,
    *,
    application_id: str,
    name: str | None = None,
    brand: str | None = None,
    defaults: ApplicationDefaults | None = None,
    allowed_channels: list[Channel] | None = None,
    risk: RiskSettings | None = None,
) -> ApplicationPublic | None:
    """Change the given fields (None: keep). `defaults` and `risk` are replaced whole."""
    async with store.session() as session:
        row = await session.get(Application, application_id, with_for_update=True)
        if row is None:
            return None
        current = application_public(row)
        policy = ApplicationPolicy(
            defaults=defaults if defaults is not None else current.defaults,
            allowed_channels=(
                allowed_channels if allowed_channels is not None else current.allowed_channels
            ),
        )
        if name is not None:
            row.name = name
        if brand is not None:
            row.brand = brand
        for column, value in _policy_columns(policy).items():
            setattr(row, column, value)
        if risk is not None:
            row.risk = _risk_column(risk)
        row.updated_at = utcnow()
        session.add(row)
        await session.commit()
    return application_public(row)


async def ensure_default_application(
    store: Store, *, name: str = "Default", brand: str = ""
) -> ApplicationPublic:
    """The application `default` (of the settings' keys), created once; safe to race."""
    for attempt in range(5):
        existing = await get_application(store, application_id=DEFAULT_APPLICATION_ID)
        if existing is not None:
            return existing
        try:
            return await create_application(
                store, name=name, brand=brand, application_id=DEFAULT_APPLICATION_ID
            )
        except IntegrityError:
            continue  # another process inserted it first: read theirs
        except OperationalError:  # SQLite busy beyond its timeout
            if attempt == 4:
                raise
            await asyncio.sleep(0.1 * (attempt + 1))
    raise RuntimeError("the default application could not be created")  # pragma: no cover


# ---------------------------------------------------------------------------- API keys
async def create_api_key(
    store: Store, *, application_id: str, mode: Mode, name: str = ""
) -> NewApiKey:
    """Issue a key: the returned `key` is the only copy there will ever be."""
    async with store.session() as session:
        if await session.get(Application, application_id) is None:
            raise ApplicationNotFoundError(application_id)
        raw = new_api_key(mode)
        row = ApiKey(
            id=new_key_id(),
            application_id=application_id,
            mode=mode.value,
            name=name,
            key_hash=hash_api_key(raw),
            hint=key_hint(raw),
            created_at=utcnow(),
        )
        session.add(row)
        await session.commit()
    return NewApiKey(key=raw, api_key=api_key_public(row))


async def get_api_key(store: Store, *, key_id: str) -> ApiKeyPublic | None:
    async with store.session() as session:
        row = await session.get(ApiKey, key_id)
    return None if row is None else api_key_public(row)


async def list_api_keys(
    store: Store, *, application_id: str, include_revoked: bool = True
) -> list[ApiKeyPublic]:
    """An application's keys, oldest first."""
    query = select(ApiKey).where(ApiKey.application_id == application_id)
    if not include_revoked:
        query = query.where(col(ApiKey.revoked_at).is_(None))
    query = query.order_by(col(ApiKey.created_at), col(ApiKey.id))
    async with store.session() as session:
        rows = (await session.exec(query)).all()
    return [api_key_public(r) for r in rows]


async def revoke_api_key(
    store: Store, *, key_id: str, application_id: str | None = None
) -> ApiKeyPublic | None:
    """Revoke a key for good (a repeat keeps the first revocation time); None if unknown."""
    now = utcnow()
    async with store.session() as session:
        query = update(ApiKey).where(col(ApiKey.id) == key_id, col(ApiKey.revoked_at).is_(None))
        if application_id is not None:
            query = query.where(col(ApiKey.application_id) == application_id)
        await session.exec(query.values(revoked_at=now))
        await session.commit()
        row = await session.get(ApiKey, key_id, populate_existing=True)
    if row is None or (application_id is not None and row.application_id != application_id):
        return None
    return api_key_public(row)


async def find_api_key(store: Store, *, key_hash: str) -> KeyMatch | None:
    """The active key with this hash and its application: one indexed query."""
    query = (
        select(ApiKey, Application)
        .join(Application, col(Application.id) == col(ApiKey.application_id))
        .where(ApiKey.key_hash == key_hash)
    )
    async with store.session() as session:
        found = (await session.exec(query)).first()
    if found is None:
        return None
    key, application = found
    if key.revoked_at is not None:
        return None
    return KeyMatch(
        key_id=key.id,
        mode=Mode(key.mode),
        last_used_at=key.last_used_at,
        application=application_public(application),
    )


async def touch_api_key(store: Store, *, key_id: str, now: datetime | None = None) -> bool:
    """Record a use of the key, unless one was recorded in the last minute; True if written."""
    now = now or utcnow()
    query = (
        update(ApiKey)
        .where(
            col(ApiKey.id) == key_id,
            or_(
                col(ApiKey.last_used_at).is_(None),
                col(ApiKey.last_used_at) <= now - TOUCH_INTERVAL,
            ),
        )
        .values(last_used_at=now)
    )
    async with store.session() as session:
        result = await session.exec(query)
        await session.commit()
    return bool(getattr(result, "rowcount", 0))
