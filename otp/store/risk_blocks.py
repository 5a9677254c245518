"""Risk blocks: a country or number prefix refused for one application and mode.

A block is active from its creation until it expires (`expires_at`, None: never) or an
operator lifts it. Automatic blocks come from conversion monitoring (`otp.risk.conversion_monitor`)
and carry a `level`: the how-manieth automatic block of the same scope it is, which
sets its duration. Lifting a block changes nothing else: the next automatic block of
that scope still escalates. Every query is scoped by application id AND mode.

Prefix blocks come in two kinds. One an operator typed holds its prefix in the clear and
matches every number starting with it (the number's prefixes are computed at check time,
nothing of the number is stored). An automatic one holds the keyed hash of the blocked
range (`value_hash`, matched against the number's `range_hash`) and only a short clear
range (`otp.domain.destinations.short_range`) for people to read.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, and_, func, or_
from sqlmodel import col, select

from otp.domain.ids import random_id
from otp.store import Store
from otp.store.tables import RiskBlock, utcnow

BLOCK_ID_PREFIX = "blk_"
BLOCK_ID_RE = re.compile(r"^blk_[a-z2-7]{24}$")
_COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
# `+` and 4 to 14 digits: a country code alone up to a number minus its last digit.
_PREFIX_RE = re.compile(r"^\+[1-9][0-9]{3,13}$")
# What an automatic block shows of its range: + and a country code, perhaps a few digits.
_SHORT_RANGE_RE = re.compile(r"^\+[1-9][0-9]{0,13}$")
REASON_MAX = 300


class BlockScope(StrEnum):
    COUNTRY = "country"
    PREFIX = "prefix"


def new_block_id() -> str:
    """`blk_` + 24 random base32 characters (120 bits)."""
    return random_id(BLOCK_ID_PREFIX, random_bytes=15)


def normalize_value(scope: BlockScope | str, value: str, *, hashed: bool = False) -> str:
    """The canonical form of a block's value; ValueError when it is not one.

    Country: ISO 3166-1 alpha-2, upper case (`us` → `US`). Prefix: `+` and digits, spaces
    and dashes dropped (`+1 415-555` → `+1415555`).
    """
    text = value.strip()
    if BlockScope(scope) is BlockScope.COUNTRY:
        text = text.upper()
        if not _COUNTRY_RE.match(text):
            raise ValueError("a country is two letters (ISO 3166-1 alpha-2), e.g. US")
        return text
    text = re.sub(r"[\s\-()]", "", text)
    if hashed and _SHORT_RANGE_RE.match(text):
        return text
    if not _PREFIX_RE.match(text):
        raise ValueError("a prefix is + and 4 to 14 digits, e.g. +1415555")
    return text


def is_active(block: RiskBlock, now: datetime | None = None) -> bool:
    now = now or utcnow()
    return block.lifted_at is None and (block.expires_at is None or block.expires_at > now)


def _prefix_heads(prefix: str) -> list[str]:
    """Every leading part of a prefix, from `+` and 4 digits: the prefix blocks covering it."""
    return [prefix[:n] for n in range(5, len(prefix) + 1)]


def covers(
    block: RiskBlock,
    *,
    country: str | None,
    prefix: str | None,
    prefix_hash: str | None = None,
) -> bool:
    """Whether the block refuses a destination in `country` whose number starts with
    `prefix` (range hash `prefix_hash`): the rule `find_active_block` queries; activity
    is checked apart."""
    if block.scope == BlockScope.COUNTRY.value:
        return country is not None and block.value == country
    if block.value_hash is not None:
        return prefix_hash is not None and block.value_hash == prefix_hash
    return prefix is not None and block.value in _prefix_heads(prefix)


def _active(now: datetime) -> ColumnElement[bool]:
    return and_(
        col(RiskBlock.lifted_at).is_(None),
        or_(col(RiskBlock.expires_at).is_(None), col(RiskBlock.expires_at) > now),
    )


async def create_block(
    store: Store,
    *,
    application_id: str,
    mode: str,
    scope: BlockScope | str,
    value: str,
    reason: str,
    automatic: bool,
    level: int = 1,
    duration_s: int | None = None,
    now: datetime | None = None,
    value_hash: str | None = None,
) -> RiskBlock:
    """A new block, active at once; `duration_s` None: until lifted. `value` is normalised.

    `value_hash` (prefix scope): the block matches that range hash only, and `value` is
    just the short range shown to people."""
    created = now or utcnow()
    row = RiskBlock(
        id=new_block_id(),
        application_id=application_id,
        mode=str(mode),
        scope=BlockScope(scope).value,
        value=normalize_value(scope, value, hashed=value_hash is not None),
        value_hash=value_hash if BlockScope(scope) is BlockScope.PREFIX else None,
        reason=reason[:REASON_MAX],
        automatic=automatic,
        level=level,
        created_at=created,
        expires_at=created + timedelta(seconds=duration_s) if duration_s is not None else None,
    )
    async with store.write_guard(), store.session() as session:
        session.add(row)
        await session.commit()
    return row


async def get_block(
    store: Store, *, block_id: str, application_id: str | None = None
) -> RiskBlock | None:
    query = select(RiskBlock).where(RiskBlock.id == block_id)
    if application_id is not None:
        query = query.where(RiskBlock.application_id == application_id)
    async with store.session() as session:
        return (await session.exec(query)).first()


async def list_active_blocks(
    store: Store,
    *,
    application_id: str,
    mode: str,
    scope: BlockScope | str | None = None,
    now: datetime | None = None,
) -> list[RiskBlock]:
    """The blocks in force now, newest first."""
    query = select(RiskBlock).where(
        RiskBlock.application_id == application_id,
        RiskBlock.mode == str(mode),
        _active(now or utcnow()),
    )
    if scope is not None:
        query = query.where(RiskBlock.scope == BlockScope(scope).value)
    query = query.order_by(col(RiskBlock.created_at).desc(), col(RiskBlock.id).desc())
    async with store.session() as session:
        return list((await session.exec(query)).all())


async def list_blocks(
    store: Store,
    *,
    application_id: str,
    mode: str | None = None,
    scope: BlockScope | str | None = None,
    since: datetime | None = None,
    limit: int = 200,
    now: datetime | None = None,
) -> list[RiskBlock]:
    """Active blocks and those created since `since` (lifted or expired included), newest
    first. Without `since`: every block."""
    query = select(RiskBlock).where(RiskBlock.application_id == application_id)
    if mode is not None:
        query = query.where(RiskBlock.mode == str(mode))
    if scope is not None:
        query = query.where(RiskBlock.scope == BlockScope(scope).value)
    if since is not None:
        query = query.where(or_(_active(now or utcnow()), col(RiskBlock.created_at) >= since))
    query = query.order_by(col(RiskBlock.created_at).desc(), col(RiskBlock.id).desc()).limit(limit)
    async with store.session() as session:
        return list((await session.exec(query)).all())


async def find_active_block(
    store: Store,
    *,
    application_id: str,
    mode: str,
    country: str | None,
    prefix: str | None,
    now: datetime | None = None,
    prefix_hash: str | None = None,
) -> RiskBlock | None:
    """The block refusing a destination in `country` whose number starts with `prefix`
    (range hash `prefix_hash`).

    An operator's prefix block matches every longer prefix too (`+1415` blocks
    `+1415555`); an automatic one matches its range hash only. When several match, the
    one expiring last (a block until lifted first) wins.
    """
    matches = []
    if country:
        matches.append(
            and_(col(RiskBlock.scope) == BlockScope.COUNTRY.value, col(RiskBlock.value) == country)
        )
    if prefix:
        matches.append(
            and_(
                col(RiskBlock.scope) == BlockScope.PREFIX.value,
                col(RiskBlock.value_hash).is_(None),
                col(RiskBlock.value).in_(_prefix_heads(prefix)),
            )
        )
    if prefix_hash:
        matches.append(
            and_(
                col(RiskBlock.scope) == BlockScope.PREFIX.value,
                col(RiskBlock.value_hash) == prefix_hash,
            )
        )
    if not matches:
        return None
    query = (
        select(RiskBlock)
        .where(
            RiskBlock.application_id == application_id,
            RiskBlock.mode == str(mode),
            or_(*matches),
            _active(now or utcnow()),
        )
        .order_by(col(RiskBlock.expires_at).is_(None).desc(), col(RiskBlock.expires_at).desc())
        .limit(1)
    )
    async with store.session() as session:
        return (await session.exec(query)).first()


async def lift_block(
    store: Store,
    *,
    block_id: str,
    lifted_by: str,
    application_id: str | None = None,
    now: datetime | None = None,
) -> RiskBlock | None:
    """End a block now. None when there is no such block (for this application); a block
    already lifted or expired is returned unchanged."""
    now = now or utcnow()
    async with store.write_guard(), store.session() as session:
        query = select(RiskBlock).where(RiskBlock.id == block_id)
        if application_id is not None:
            query = query.where(RiskBlock.application_id == application_id)
        row = (await session.exec(query)).first()
        if row is None or not is_active(row, now):
            return row
        row.lifted_at = now
        row.lifted_by = lifted_by[:120]
        session.add(row)
        await session.commit()
        await session.refresh(row)
        return row


def _scope_is(scope: BlockScope | str, value: str) -> ColumnElement[bool]:
    """Blocks of one scope: a country, a range by its hash, or a prefix typed in the clear
    (on blocks that have no hash)."""
    if BlockScope(scope) is BlockScope.PREFIX:
        return and_(
            col(RiskBlock.scope) == BlockScope.PREFIX.value,
            or_(
                col(RiskBlock.value_hash) == value,
                and_(col(RiskBlock.value_hash).is_(None), col(RiskBlock.value) == value),
            ),
        )
    return and_(col(RiskBlock.scope) == BlockScope.COUNTRY.value, col(RiskBlock.value) == value)


async def count_automatic_blocks(
    store: Store,
    *,
    application_id: str,
    mode: str,
    scope: BlockScope | str,
    value: str,
    since: datetime | None = None,
) -> int:
    """Automatic blocks of this scope created since `since` (lifted or expired included).
    For the prefix scope `value` is the range hash."""
    query = select(func.count()).where(
        RiskBlock.application_id == application_id,
        RiskBlock.mode == str(mode),
        _scope_is(scope, value),
        col(RiskBlock.automatic).is_(True),
    )
    if since is not None:
        query = query.where(col(RiskBlock.created_at) >= since)
    async with store.session() as session:
        return int((await session.exec(query)).one())


async def last_block_end(
    store: Store,
    *,
    application_id: str,
    mode: str,
    scope: BlockScope | str,
    value: str,
    now: datetime | None = None,
) -> datetime | None:
    """When the latest block of this exact scope ended (lifted, or expired before `now`);
    None when it never had one, or one is still active. For the prefix scope `value` is
    the range hash (the scopes conversion monitoring judges)."""
    now = now or utcnow()
    query = (
        select(RiskBlock)
        .where(
            RiskBlock.application_id == application_id,
            RiskBlock.mode == str(mode),
            _scope_is(scope, value),
        )
        .order_by(col(RiskBlock.created_at).desc())
        .limit(1)
    )
    async with store.session() as session:
        row = (await session.exec(query)).first()
    if row is None or is_active(row, now):
        return None
    return row.lifted_at or row.expires_at
