"""Verification records, their event log, search and analytics (keyword-only queries)."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, func, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select

from otp.cost.money import format_amount
from otp.store import Store
from otp.store.tables import (
    DeliveryCostRecord,
    VerificationDestination,
    VerificationEvent,
    VerificationRecord,
    WebhookEndpoint,
    utcnow,
)

EVENT_COLUMNS = tuple(
    c.name
    for c in VerificationEvent.__table__.columns  # type: ignore[attr-defined]
    if c.name != "id"
)
RECORD_COLUMNS = tuple(c.name for c in VerificationRecord.__table__.columns)  # type: ignore[attr-defined]

# Statements are built once per dialect and executed with parameters, so SQLAlchemy
# compiles each once (a statement carrying its values is compiled on every call).
_STATEMENTS: dict[str, dict[str, Any]] = {}


def _statements(store: Store) -> dict[str, Any]:
    name = store.engine.dialect.name
    built = _STATEMENTS.get(name)
    if built is not None:
        return built
    dialect: Any = postgresql if name == "postgresql" else sqlite
    record = dialect.insert(VerificationRecord)
    changing = {c: record.excluded[c] for c in RECORD_COLUMNS if c != "id"}
    built = _STATEMENTS[name] = {
        "record_final": record.on_conflict_do_update(index_elements=["id"], set_=changing),
        "record_pending": record.on_conflict_do_update(
            index_elements=["id"],
            set_=changing,
            where=col(VerificationRecord.final).is_(False),
        ),
        "destination": dialect.insert(VerificationDestination).on_conflict_do_nothing(),
        "events": dialect.insert(VerificationEvent)
        .on_conflict_do_nothing(index_elements=["verification_id", "key"])
        .returning(col(VerificationEvent.id)),
    }
    return built


async def _insert_events(conn: Any, store: Store, events: Sequence[dict[str, Any]]) -> int:
    now = utcnow()
    params = [{**{name: e.get(name) for name in EVENT_COLUMNS}, "recorded_at": now} for e in events]
    result = await conn.execute(_statements(store)["events"], params)
    return len(result.all())


async def insert_events(store: Store, *, events: Sequence[dict[str, Any]]) -> int:
    """Insert events (column dicts); one whose (verification, key) is already logged is
    skipped. Returns how many were new."""
    if not events:
        return 0
    async with store.writing() as conn:
        return await _insert_events(conn, store, events)


async def has_webhook_endpoints(store: Store, *, application_id: str, mode: str) -> bool:
    """Whether the application has any enabled webhook endpoint in this mode."""
    async with store.engine.connect() as conn:
        found = await conn.execute(
            sa_select(col(WebhookEndpoint.id))
            .where(
                col(WebhookEndpoint.application_id) == application_id,
                col(WebhookEndpoint.mode) == mode,
                col(WebhookEndpoint.enabled).is_(True),
            )
            .limit(1)
        )
        return found.first() is not None


async def undispatched_events(store: Store, *, verification_id: str) -> list[VerificationEvent]:
    async with store.session() as session:
        rows = await session.exec(
            select(VerificationEvent)
            .where(VerificationEvent.verification_id == verification_id)
            .where(col(VerificationEvent.webhooks_dispatched).is_(False))
            .order_by(col(VerificationEvent.occurred_at), col(VerificationEvent.id))
        )
        return list(rows.all())


async def mark_dispatched(store: Store, *, event_id: int | None) -> None:
    async with store.write_guard(), store.session() as session:
        await session.exec(
            update(VerificationEvent)
            .where(col(VerificationEvent.id) == event_id)
            .values(webhooks_dispatched=True)
        )
        await session.commit()


async def upsert_record(
    store: Store,
    *,
    record: dict[str, Any],
    destination_hashes: Sequence[tuple[str, str]] = (),
    events: Sequence[dict[str, Any]] = (),
) -> int:
    """Write a verification's row (column dict) and, in the same transaction, its
    destinations' hashes and new events; returns how many events were new. A final row
    always wins; a non-final one never overwrites a final one (a late writer cannot undo
    the workflow's last word)."""
    statements = _statements(store)
    values = {name: record.get(name) for name in RECORD_COLUMNS}
    values["updated_at"] = utcnow()
    async with store.writing() as conn:
        await conn.execute(
            statements["record_final" if values["final"] else "record_pending"], values
        )
        if destination_hashes:
            await conn.execute(
                statements["destination"],
                [
                    {"verification_id": values["id"], "destination_hash": h, "channel": c}
                    for h, c in destination_hashes
                ],
            )
        return await _insert_events(conn, store, events) if events else 0


async def mark_delivered(store: Store, *, verification_id: str, at: datetime) -> None:
    """A receipt said delivered: the row says so too, whatever its state."""
    async with store.write_guard(), store.session() as session:
        await session.exec(
            update(VerificationRecord)
            .where(col(VerificationRecord.id) == verification_id)
            .where(col(VerificationRecord.delivered).is_(False))
            .values(delivered=True, delivered_at=at, updated_at=utcnow())
        )
        await session.commit()


async def get_record(
    store: Store, *, verification_id: str, application_id: str, mode: str
) -> VerificationRecord | None:
    async with store.session() as session:
        row = await session.get(VerificationRecord, verification_id)
    if row is None or row.application_id != application_id or row.mode != mode:
        return None
    return row


async def list_events(
    store: Store, *, verification_id: str, application_id: str, mode: str
) -> list[VerificationEvent]:
    async with store.session() as session:
        rows = await session.exec(
            select(VerificationEvent)
            .where(VerificationEvent.verification_id == verification_id)
            .where(VerificationEvent.application_id == application_id)
            .where(VerificationEvent.mode == mode)
            .order_by(col(VerificationEvent.occurred_at), col(VerificationEvent.id))
        )
        return list(rows.all())


async def find_delivery_event(
    store: Store, *, verification_id: str, provider_message_id: str
) -> VerificationEvent | None:
    """The send event of a delivery, found by the provider's message id."""
    async with store.session() as session:
        rows = await session.exec(
            select(VerificationEvent)
            .where(VerificationEvent.verification_id == verification_id)
            .where(VerificationEvent.provider_message_id == provider_message_id)
            .limit(1)
        )
        return rows.first()


# ------------------------------------------------------------------------ search
@dataclass(frozen=True)
class SearchFilter:
    application_id: str
    mode: str
    status: str | None = None
    channel: str | None = None
    country: str | None = None
    destination_hash: str | None = None
    client_ref: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


def encode_cursor(record: VerificationRecord) -> str:
    raw = json.dumps([record.created_at.isoformat(), record.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Raises ValueError for anything that is not a cursor this service made."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, ident = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return datetime.fromisoformat(created), str(ident)
    except Exception as exc:
        raise ValueError("malformed cursor") from exc


async def search(
    store: Store, *, where: SearchFilter, limit: int, cursor: str | None = None
) -> tuple[list[VerificationRecord], str | None]:
    """Newest first; the cursor continues after the last row of the previous page."""
    query = select(VerificationRecord).where(
        VerificationRecord.application_id == where.application_id,
        VerificationRecord.mode == where.mode,
    )
    if where.status:
        query = query.where(VerificationRecord.status == where.status)
    if where.channel:
        query = query.where(VerificationRecord.channel == where.channel)
    if where.country:
        query = query.where(VerificationRecord.country == where.country)
    if where.client_ref:
        query = query.where(VerificationRecord.client_ref == where.client_ref)
    if where.created_from:
        query = query.where(col(VerificationRecord.created_at) >= where.created_from)
    if where.created_to:
        query = query.where(col(VerificationRecord.created_at) < where.created_to)
    if where.destination_hash:
        matching = select(VerificationDestination.verification_id).where(
            VerificationDestination.destination_hash == where.destination_hash
        )
        query = query.where(col(VerificationRecord.id).in_(matching))
    if cursor:
        created, ident = decode_cursor(cursor)
        query = query.where(
            or_(
                col(VerificationRecord.created_at) < created,
                and_(
                    col(VerificationRecord.created_at) == created,
                    col(VerificationRecord.id) < ident,
                ),
            )
        )
    query = query.order_by(
        col(VerificationRecord.created_at).desc(), col(VerificationRecord.id).desc()
    ).limit(limit + 1)
    async with store.session() as session:
        rows = list((await session.exec(query)).all())
    next_cursor = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


# --------------------------------------------------------------------- analytics
@dataclass
class Bucket:
    """The figures of one group (or of the whole range when `key` is empty).

    Costs are micros of `currency`: each delivery counts the provider's price when it
    reported one in that currency, its estimate otherwise."""

    key: dict[str, str | None]
    currency: str = ""
    started: int = 0
    delivered: int = 0
    approved: int = 0
    expired: int = 0
    failed: int = 0
    canceled: int = 0
    blocked: int = 0
    pending: int = 0
    with_fallback: int = 0
    checks: int = 0
    wrong_checks: int = 0
    verify_p50_ms: int | None = None
    verify_p95_ms: int | None = None
    cost_micros: int = 0
    unapproved_cost_micros: int = 0
    deliveries: int = 0
    priced_by_provider: int = 0
    estimated: int = 0
    flagged: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.key,
            "started": self.started,
            "delivered": self.delivered,
            "approved": self.approved,
            "expired": self.expired,
            "failed": self.failed,
            "canceled": self.canceled,
            "blocked": self.blocked,
            "pending": self.pending,
            "conversion_rate": _rate(self.approved, self.started),
            "delivery_rate": _rate(self.delivered, self.started),
            "fallback_rate": _rate(self.with_fallback, self.started),
            "wrong_code_rate": _rate(self.wrong_checks, self.checks),
            "time_to_verify_p50_ms": self.verify_p50_ms,
            "time_to_verify_p95_ms": self.verify_p95_ms,
            "currency": self.currency,
            "cost": format_amount(self.cost_micros),
            "cost_per_verification": _per(self.cost_micros, self.started),
            "cost_per_approved_verification": _per(self.cost_micros, self.approved),
            "unapproved_cost": format_amount(self.unapproved_cost_micros),
            "unapproved_cost_share": _rate(self.unapproved_cost_micros, self.cost_micros),
            "deliveries": self.deliveries,
            "deliveries_priced_by_provider": self.priced_by_provider,
            "deliveries_estimated": self.estimated,
            "estimates_flagged": self.flagged,
        }


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def divide_micros(micros: int, count: int) -> int:
    """micros / count rounded half up to the micro (exact integer arithmetic)."""
    return (2 * micros + count) // (2 * count)


def _per(micros: int, count: int) -> str | None:
    """An amount per verification as a decimal string (None when there is none)."""
    return format_amount(divide_micros(micros, count)) if count else None


def percentile(sorted_values: Sequence[int], p: float) -> int | None:
    """Nearest-rank percentile of already sorted values (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


_FAILED = ("undeliverable", "max_attempts_reached")
_PERCENTILES = (50, 95)
GROUPS = ("day", "channel", "country", "provider")
# A delivery is sent after its verification was created; the margin absorbs clock skew
# between the API process that created it and the worker that sent it.
_SENT_MARGIN = timedelta(hours=1)


def _group_columns(store: Store, group_by: Sequence[str], costs: Any) -> list[Any]:
    """The SQL expression of each grouping, labelled by its name. Days are UTC: both
    databases hold UTC (SQLite as ISO text, PostgreSQL as timestamptz). `provider` is
    the delivery's, from the per-verification cost subquery `costs`."""
    record = VerificationRecord
    if store.engine.dialect.name == "postgresql":
        day = func.to_char(func.timezone("UTC", col(record.created_at)), "YYYY-MM-DD")
    else:
        day = func.substr(col(record.created_at), 1, 10)
    expressions: dict[str, Any] = {
        "day": day,
        "channel": col(record.first_channel),
        "country": col(record.country),
    }
    if "provider" in costs.c:
        expressions["provider"] = costs.c.provider
    return [expressions[name].label(name) for name in group_by]


def _count_if(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _costs_subquery(
    *,
    application_id: str,
    mode: str,
    currency: str,
    sent_from: datetime,
    by_provider: bool,
) -> Any:
    """The cost of each verification (or of each verification's deliveries per provider)
    in `currency`: its amount (the provider's price when it reported one in that
    currency, else the estimate) and how its deliveries were priced."""
    cost = DeliveryCostRecord
    reported = and_(col(cost.reported_micros).is_not(None), col(cost.reported_currency) == currency)
    amount = case((reported, col(cost.reported_micros)), else_=col(cost.estimate_micros))
    keys = [col(cost.verification_id)] + ([col(cost.provider)] if by_provider else [])
    return (
        sa_select(
            *keys,
            func.sum(amount).label("cost"),
            func.count().label("deliveries"),
            _count_if(reported).label("priced"),
            _count_if(and_(~reported, col(cost.source) == "default")).label("flagged"),
        )
        .where(
            col(cost.application_id) == application_id,
            col(cost.mode) == mode,
            col(cost.currency) == currency,
            col(cost.sent_at) >= sent_from,
        )
        .group_by(*keys)
        .subquery("costs_by_provider" if by_provider else "costs")
    )


async def analytics(
    store: Store,
    *,
    application_id: str,
    mode: str,
    created_from: datetime,
    created_to: datetime,
    group_by: Sequence[str],
    currency: str = "USD",
) -> tuple[Bucket, list[Bucket]]:
    """Totals and buckets over verifications created in [from, to), grouped by any of
    day/channel/country (the verification's) and provider (its deliveries'). The
    database aggregates (counts, sums and nearest-rank percentiles of the time to
    verify), so the figures are exact over any volume and Python reads one row per group.

    Costs are those of the verifications' deliveries in `currency` (the deployment's).
    Grouped by provider, a verification counts in the group of each provider that sent
    it something, with the cost of that provider's deliveries only; a verification
    without any costed delivery is in the group `provider: None`."""
    record = VerificationRecord
    in_range = (
        col(record.application_id) == application_id,
        col(record.mode) == mode,
        col(record.created_at) >= created_from,
        col(record.created_at) < created_to,
    )
    status = col(record.status)
    buckets: dict[tuple[Any, ...], Bucket] = {}
    total = Bucket(key={}, currency=currency)
    async with store.engine.connect() as conn:
        for names in ([], list(group_by)):
            costs = _costs_subquery(
                application_id=application_id,
                mode=mode,
                currency=currency,
                sent_from=created_from - _SENT_MARGIN,
                by_provider="provider" in names,
            )
            joined = VerificationRecord.__table__.outerjoin(  # type: ignore[attr-defined]
                costs, costs.c.verification_id == col(record.id)
            )
            figures = [
                func.count().label("started"),
                _count_if(col(record.delivered).is_(True)).label("delivered"),
                _count_if(status == "approved").label("approved"),
                _count_if(status == "expired").label("expired"),
                _count_if(status.in_(_FAILED)).label("failed"),
                _count_if(status == "canceled").label("canceled"),
                _count_if(status == "blocked").label("blocked"),
                _count_if(status == "pending").label("pending"),
                _count_if(col(record.fallbacks) > 0).label("with_fallback"),
                func.coalesce(func.sum(col(record.attempts_used)), 0).label("checks"),
                func.coalesce(func.sum(col(record.wrong_checks)), 0).label("wrong_checks"),
                func.coalesce(func.sum(costs.c.cost), 0).label("cost_micros"),
                func.coalesce(
                    func.sum(case((status != "approved", costs.c.cost), else_=0)), 0
                ).label("unapproved_cost_micros"),
                func.coalesce(func.sum(costs.c.deliveries), 0).label("deliveries"),
                func.coalesce(func.sum(costs.c.priced), 0).label("priced_by_provider"),
                func.coalesce(func.sum(costs.c.flagged), 0).label("flagged"),
            ]
            groups = _group_columns(store, names, costs)
            query = sa_select(*groups, *figures).select_from(joined).where(*in_range)
            if groups:
                query = query.group_by(*groups)
            for row in (await conn.execute(query)).mappings():
                key = {name: row[name] for name in names}
                bucket = Bucket(
                    key=key, currency=currency, **{f.name: int(row[f.name]) for f in figures}
                )
                bucket.estimated = bucket.deliveries - bucket.priced_by_provider
                if names:
                    buckets[tuple(key.values())] = bucket
                else:
                    total = bucket
            for group, p, value in await _verify_percentiles(conn, groups, in_range, joined):
                target = buckets.get(group) if names else total
                if target is not None:
                    setattr(target, f"verify_p{p}_ms", value)
    ordered = sorted(buckets.values(), key=lambda b: tuple(str(v) for v in b.key.values()))
    return total, ordered


async def _verify_percentiles(
    conn: Any, groups: Sequence[Any], in_range: Sequence[Any], joined: Any
) -> list[tuple[tuple[Any, ...], int, int]]:
    """(group, p, value): the nearest-rank p-th percentile of the time to verify per group,
    in SQL on both databases (window functions: the rank ceil(p/100 * n) of each group)."""
    ttv = col(VerificationRecord.time_to_verify_ms)
    names = [g.name for g in groups]
    partition = [g.element for g in groups] or None
    ranked = (
        sa_select(
            *groups,
            ttv.label("ttv"),
            func.row_number().over(partition_by=partition, order_by=ttv).label("rn"),
            func.count().over(partition_by=partition).label("n"),
        )
        .select_from(joined)
        .where(*in_range, ttv.is_not(None))
        .subquery()
    )
    found: list[tuple[tuple[Any, ...], int, int]] = []
    for p in _PERCENTILES:
        rank = (ranked.c.n * p + 99) // 100  # floor division: ceil(p/100 * n), at least 1
        query = sa_select(*(ranked.c[name] for name in names), ranked.c.ttv).where(
            ranked.c.rn == rank
        )
        for row in (await conn.execute(query)).all():
            found.append((tuple(row[:-1]), p, int(row[-1])))
    return found


# --------------------------------------------------------------------- retention
async def purge_finished(
    store: Store, *, older_than: timedelta, now: datetime | None = None
) -> int:
    """Delete finished verifications (their events, destinations and delivery costs) that
    ended before now - older_than."""
    cutoff = (now or utcnow()) - older_than
    async with store.write_guard(), store.session() as session:
        ids = select(VerificationRecord.id).where(
            col(VerificationRecord.finished_at).is_not(None),
            col(VerificationRecord.finished_at) < cutoff,
        )
        doomed = list((await session.exec(ids)).all())
        for start in range(0, len(doomed), 500):
            chunk = doomed[start : start + 500]
            await session.exec(
                delete(VerificationEvent).where(col(VerificationEvent.verification_id).in_(chunk))
            )
            await session.exec(
                delete(VerificationDestination).where(
                    col(VerificationDestination.verification_id).in_(chunk)
                )
            )
            await session.exec(
                delete(DeliveryCostRecord).where(col(DeliveryCostRecord.verification_id).in_(chunk))
            )
            await session.exec(
                delete(VerificationRecord).where(col(VerificationRecord.id).in_(chunk))
            )
        await session.commit()
    return len(doomed)
