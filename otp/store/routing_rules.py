"""Queries of routing rules: per application, one row per (channel, country, prefix).

Configuration only, no destination data: kept while the application exists
(the retention purge drops those of an application that is gone).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from sqlalchemy import delete
from sqlmodel import col, select

from otp.domain import Channel
from otp.domain.routing import Sender, SenderType
from otp.routing.rules import Rule
from otp.store import Store
from otp.store.tables import RoutingRuleRow, utcnow

RULE_ID_PREFIX = "rte_"


def new_rule_id() -> str:
    return RULE_ID_PREFIX + secrets.token_hex(12)


def as_rule(row: RoutingRuleRow) -> Rule:
    """The matcher's view of a stored rule."""
    sender = (
        Sender(type=SenderType(row.sender_type), value=row.sender_value or "")
        if row.sender_type
        else None
    )
    return Rule(
        id=row.id,
        channel=Channel(row.channel),
        country=row.country or None,
        prefix=row.prefix or None,
        providers=tuple(row.providers),
        sender=sender,
    )


async def list_rules(store: Store, *, application_id: str) -> list[RoutingRuleRow]:
    """The application's rules, by channel, country, then prefix."""
    async with store.session() as session:
        rows = await session.exec(
            select(RoutingRuleRow)
            .where(RoutingRuleRow.application_id == application_id)
            .order_by(
                col(RoutingRuleRow.channel), col(RoutingRuleRow.country), col(RoutingRuleRow.prefix)
            )
        )
        return list(rows.all())


async def get_rule(store: Store, *, application_id: str, rule_id: str) -> RoutingRuleRow | None:
    async with store.session() as session:
        row = await session.get(RoutingRuleRow, rule_id)
    return row if row is not None and row.application_id == application_id else None


async def find_same_match(
    store: Store, *, application_id: str, channel: str, country: str, prefix: str
) -> RoutingRuleRow | None:
    """The rule that already holds this channel, country and prefix, if any."""
    async with store.session() as session:
        rows = await session.exec(
            select(RoutingRuleRow).where(
                RoutingRuleRow.application_id == application_id,
                RoutingRuleRow.channel == channel,
                RoutingRuleRow.country == country,
                RoutingRuleRow.prefix == prefix,
            )
        )
        return rows.first()


async def save_rule(
    store: Store,
    *,
    application_id: str,
    channel: str,
    country: str,
    prefix: str,
    providers: Sequence[str],
    sender: Sender | None,
    rule_id: str | None = None,
) -> RoutingRuleRow:
    """Create a rule, or replace the fields of `rule_id` (which must be the application's)."""
    now = utcnow()
    async with store.session() as session:
        row = await session.get(RoutingRuleRow, rule_id) if rule_id else None
        if row is None:
            row = RoutingRuleRow(
                id=rule_id or new_rule_id(),
                application_id=application_id,
                channel=channel,
                created_at=now,
            )
        row.channel, row.country, row.prefix = channel, country, prefix
        row.providers = list(providers)
        row.sender_type = sender.type.value if sender else None
        row.sender_value = sender.value if sender else None
        row.updated_at = now
        session.add(row)
        await session.commit()
        await session.refresh(row)
    return row


async def delete_rule(store: Store, *, application_id: str, rule_id: str) -> bool:
    """Delete one of the application's rules; whether it existed."""
    async with store.writing() as conn:
        result = await conn.execute(
            delete(RoutingRuleRow.__table__).where(  # type: ignore[attr-defined]
                RoutingRuleRow.__table__.c.id == rule_id,  # type: ignore[attr-defined]
                RoutingRuleRow.__table__.c.application_id == application_id,  # type: ignore[attr-defined]
            )
        )
    return bool(result.rowcount)


async def rules_of(store: Store, *, application_id: str) -> list[Rule]:
    """The application's rules in the matcher's form."""
    return [as_rule(row) for row in await list_rules(store, application_id=application_id)]
