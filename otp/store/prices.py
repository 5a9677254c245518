"""Queries of applications' own prices (`price_overrides`): one row per route.

A route is (provider, channel, country, number type); `*` as country or number type
covers every one. Setting a route's price replaces the previous one.
"""

from __future__ import annotations

import secrets

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select

from otp.cost.price_table import ANY, PriceRow
from otp.domain import Channel
from otp.store import Store
from otp.store.tables import PriceOverride, utcnow

PRICE_ID_PREFIX = "prc_"


def price_row(row: PriceOverride) -> PriceRow:
    return PriceRow(
        provider=row.provider,
        channel=Channel(row.channel),
        country=row.country,
        number_type=row.number_type,
        unit=row.unit,
        price_micros=row.price_micros,
        currency=row.currency,
        source=row.note,
    )


async def list_overrides(store: Store, *, application_id: str) -> list[PriceOverride]:
    """The application's own prices, by provider, channel, country, number type."""
    query = (
        select(PriceOverride)
        .where(col(PriceOverride.application_id) == application_id)
        .order_by(
            col(PriceOverride.provider),
            col(PriceOverride.channel),
            col(PriceOverride.country),
            col(PriceOverride.number_type),
        )
    )
    async with store.session() as session:
        return list((await session.exec(query)).all())


async def override_rows(store: Store, *, application_id: str) -> list[PriceRow]:
    """The application's own prices as price table rows."""
    return [price_row(r) for r in await list_overrides(store, application_id=application_id)]


async def set_override(
    store: Store,
    *,
    application_id: str,
    row: PriceRow,
    note: str = "",
) -> PriceOverride:
    """Set the application's price for `row`'s route (replacing the one it had)."""
    now = utcnow()
    values = {
        "id": PRICE_ID_PREFIX + secrets.token_hex(12),
        "application_id": application_id,
        "provider": row.provider,
        "channel": row.channel.value,
        "country": row.country or ANY,
        "number_type": row.number_type or ANY,
        "unit": row.unit,
        "price_micros": row.price_micros,
        "currency": row.currency,
        "note": note,
        "created_at": now,
        "updated_at": now,
    }
    table = PriceOverride.__table__  # type: ignore[attr-defined]
    dialect = sqlite if store.is_sqlite else postgresql
    stmt = dialect.insert(table).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["application_id", "provider", "channel", "country", "number_type"],
        set_={
            "unit": stmt.excluded.unit,
            "price_micros": stmt.excluded.price_micros,
            "currency": stmt.excluded.currency,
            "note": stmt.excluded.note,
            "updated_at": stmt.excluded.updated_at,
        },
    )
    async with store.writing() as conn:
        await conn.execute(stmt)
    found = await get_override(
        store,
        application_id=application_id,
        provider=row.provider,
        channel=row.channel,
        country=row.country or ANY,
        number_type=row.number_type or ANY,
    )
    if found is None:  # pragma: no cover - just written
        raise RuntimeError("the price override was not written")
    return found


async def get_override(
    store: Store,
    *,
    application_id: str,
    provider: str,
    channel: Channel,
    country: str,
    number_type: str = ANY,
) -> PriceOverride | None:
    query = select(PriceOverride).where(
        col(PriceOverride.application_id) == application_id,
        col(PriceOverride.provider) == provider,
        col(PriceOverride.channel) == channel.value,
        col(PriceOverride.country) == country,
        col(PriceOverride.number_type) == number_type,
    )
    async with store.session() as session:
        return (await session.exec(query)).first()


async def delete_override(
    store: Store,
    *,
    application_id: str,
    provider: str,
    channel: Channel,
    country: str,
    number_type: str = ANY,
) -> bool:
    """Remove the application's price for a route (the table's applies again)."""
    async with store.writing() as conn:
        result = await conn.execute(
            delete(PriceOverride).where(
                col(PriceOverride.application_id) == application_id,
                col(PriceOverride.provider) == provider,
                col(PriceOverride.channel) == channel.value,
                col(PriceOverride.country) == country,
                col(PriceOverride.number_type) == number_type,
            )
        )
    return bool(result.rowcount)
