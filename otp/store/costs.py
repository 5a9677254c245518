"""Queries of delivery costs (`delivery_costs`): one row per accepted send, keyed by its
delivery key, holding the estimate and, once known, the provider's price.

Writes are idempotent: the delivery activity, the verification's final record and a
retried activity write the same row; the first estimate stays, a later write only fills
in a provider message id that was missing. A provider's price is written by the receipt
that brings it or by the periodic fetch, whichever comes first; a later one replaces it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select

from otp.domain import DeliveryCost
from otp.store import Store
from otp.store.tables import DeliveryCostRecord, utcnow

_TABLE = DeliveryCostRecord.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class CostEntry:
    """One delivery's cost as the activity or the final record knows it."""

    delivery_key: str
    verification_id: str
    application_id: str
    mode: str
    provider: str
    channel: str
    sent_at: datetime
    cost: DeliveryCost
    provider_message_id: str | None = None
    country: str | None = None
    kind: str = "step"
    step_index: int = 0

    def values(self) -> dict[str, object]:
        return {
            "delivery_key": self.delivery_key,
            "verification_id": self.verification_id,
            "application_id": self.application_id,
            "mode": self.mode,
            "provider": self.provider,
            "provider_message_id": self.provider_message_id or None,
            "channel": self.channel,
            "country": self.country,
            "kind": self.kind,
            "step_index": self.step_index,
            "sent_at": self.sent_at,
            "currency": self.cost.currency,
            "units": self.cost.units,
            "unit": self.cost.unit,
            "unit_price_micros": self.cost.unit_price_micros,
            "estimate_micros": self.cost.estimate_micros,
            "source": self.cost.source.value,
            "reported_micros": self.cost.reported_micros,
            "reported_currency": self.cost.reported_currency,
            "reported_at": utcnow() if self.cost.reported_micros is not None else None,
            "price_fetches": 0,
        }


async def record_costs(store: Store, entries: Sequence[CostEntry]) -> None:
    """Write each delivery's cost once (a row already there keeps its estimate and price;
    only a missing provider message id is filled in)."""
    if not entries:
        return
    dialect = sqlite if store.is_sqlite else postgresql
    stmt = dialect.insert(_TABLE)
    stmt = stmt.on_conflict_do_update(
        index_elements=["delivery_key"],
        set_={
            "provider_message_id": func.coalesce(
                _TABLE.c.provider_message_id, stmt.excluded.provider_message_id
            )
        },
    )
    async with store.writing() as conn:
        await conn.execute(stmt, [e.values() for e in entries])


async def set_reported_price(
    store: Store,
    *,
    provider: str,
    micros: int,
    currency: str,
    delivery_key: str | None = None,
    provider_message_id: str | None = None,
    at: datetime | None = None,
) -> DeliveryCostRecord | None:
    """Record the provider's price for the delivery named by its key (preferred) or by
    the provider's message id; the row as it was before, or None when no such delivery
    was costed (yet)."""
    c = _TABLE.c
    if delivery_key:
        where = c.delivery_key == delivery_key
    elif provider_message_id:
        where = (c.provider == provider) & (c.provider_message_id == provider_message_id)
    else:
        return None
    async with store.writing() as conn:
        before = (await conn.execute(select(DeliveryCostRecord).where(where))).first()
        if before is None:
            return None
        await conn.execute(
            update(_TABLE)
            .where(where)
            .values(reported_micros=micros, reported_currency=currency, reported_at=at or utcnow())
        )
    return DeliveryCostRecord.model_validate(before._mapping)


async def costs_of(store: Store, *, verification_id: str) -> list[DeliveryCostRecord]:
    """A verification's delivery costs, in the order they were sent."""
    query = (
        select(DeliveryCostRecord)
        .where(col(DeliveryCostRecord.verification_id) == verification_id)
        .order_by(col(DeliveryCostRecord.sent_at), col(DeliveryCostRecord.delivery_key))
    )
    async with store.session() as session:
        return list((await session.exec(query)).all())


async def unpriced(
    store: Store,
    *,
    providers: Sequence[str],
    sent_after: datetime,
    sent_before: datetime,
    max_fetches: int,
    limit: int,
) -> list[DeliveryCostRecord]:
    """Live deliveries of these providers without a provider price, sent in the window
    and asked fewer than `max_fetches` times, oldest first."""
    query = (
        select(DeliveryCostRecord)
        .where(
            col(DeliveryCostRecord.provider).in_(list(providers)),
            col(DeliveryCostRecord.reported_at).is_(None),
            col(DeliveryCostRecord.mode) == "live",
            col(DeliveryCostRecord.sent_at) > sent_after,
            col(DeliveryCostRecord.sent_at) <= sent_before,
            col(DeliveryCostRecord.provider_message_id).is_not(None),
            col(DeliveryCostRecord.price_fetches) < max_fetches,
        )
        .order_by(col(DeliveryCostRecord.sent_at))
        .limit(limit)
    )
    async with store.session() as session:
        return list((await session.exec(query)).all())


async def note_fetched(store: Store, *, delivery_keys: Sequence[str]) -> None:
    """Count one more unanswered price fetch for each of these deliveries."""
    if not delivery_keys:
        return
    async with store.writing() as conn:
        await conn.execute(
            update(_TABLE)
            .where(_TABLE.c.delivery_key.in_(list(delivery_keys)))
            .values(price_fetches=_TABLE.c.price_fetches + 1)
        )
