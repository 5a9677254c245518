"""What each delivery costs, applications' own prices, and spend caps in money.

`delivery_costs` holds each accepted send's estimate and the provider's price;
`price_overrides` an application's own prices. Counters become 64-bit (spend budgets
count micros). Each application's former `daily_spend` (cost units, where one SMS was 1)
becomes `spend_caps.daily` in money at UNIT_PRICE per unit, and `channel_costs` goes.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 00:00:00.000000
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# One former cost unit (one SMS) in money: the built-in table's default SMS price for a
# country it does not list is 0.10 USD, its US price 0.0083; half-way at 0.05 keeps a
# cap of the same order as the units it replaces.
UNIT_PRICE = Decimal("0.05")


def _risk(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = json.loads(value or "{}")
    return dict(value or {})


def _money(units_per_day: int) -> str:
    return f"{(UNIT_PRICE * units_per_day):.2f}"


def migrate_risk(risk: dict[str, Any]) -> dict[str, Any] | None:
    """The risk settings with `daily_spend`/`channel_costs` replaced; None: unchanged."""
    if "daily_spend" not in risk and "channel_costs" not in risk:
        return None
    risk = dict(risk)
    risk.pop("channel_costs", None)
    if "daily_spend" in risk:
        spend = risk.pop("daily_spend")
        caps = dict(risk.get("spend_caps") or {})
        if spend is None:
            caps["daily"] = None
        else:
            per_day = int(spend["limit"]) * 86_400 // max(1, int(spend["window_s"]))
            caps["daily"] = _money(per_day)
        risk["spend_caps"] = caps
    return risk


def upgrade() -> None:
    op.create_table(
        "delivery_costs",
        sa.Column("delivery_key", AutoString(length=128), nullable=False),
        sa.Column("verification_id", AutoString(length=64), nullable=False),
        sa.Column("application_id", AutoString(length=64), nullable=False),
        sa.Column("mode", AutoString(length=8), nullable=False),
        sa.Column("provider", AutoString(length=40), nullable=False),
        sa.Column("provider_message_id", AutoString(length=128), nullable=True),
        sa.Column("channel", AutoString(length=16), nullable=False),
        sa.Column("country", AutoString(length=2), nullable=True),
        sa.Column("kind", AutoString(length=8), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=False),
        sa.Column("currency", AutoString(length=3), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("unit", AutoString(length=16), nullable=False),
        sa.Column("unit_price_micros", sa.BigInteger(), nullable=False),
        sa.Column("estimate_micros", sa.BigInteger(), nullable=False),
        sa.Column("source", AutoString(length=16), nullable=False),
        sa.Column("reported_micros", sa.BigInteger(), nullable=True),
        sa.Column("reported_currency", AutoString(length=3), nullable=True),
        sa.Column("reported_at", UTCDateTime(), nullable=True),
        sa.Column("price_fetches", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("delivery_key"),
    )
    with op.batch_alter_table("delivery_costs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_delivery_costs_app_mode_sent", ["application_id", "mode", "sent_at"], unique=False
        )
        batch_op.create_index(
            "ix_delivery_costs_unpriced", ["provider", "reported_at", "sent_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_delivery_costs_provider_message_id"),
            ["provider_message_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_delivery_costs_verification_id"), ["verification_id"], unique=False
        )
    op.create_table(
        "price_overrides",
        sa.Column("id", AutoString(length=64), nullable=False),
        sa.Column("application_id", AutoString(length=64), nullable=False),
        sa.Column("provider", AutoString(length=40), nullable=False),
        sa.Column("channel", AutoString(length=16), nullable=False),
        sa.Column("country", AutoString(length=2), nullable=False),
        sa.Column("number_type", AutoString(length=32), nullable=False),
        sa.Column("unit", AutoString(length=16), nullable=False),
        sa.Column("price_micros", sa.BigInteger(), nullable=False),
        sa.Column("currency", AutoString(length=3), nullable=False),
        sa.Column("note", AutoString(length=300), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "application_id",
            "provider",
            "channel",
            "country",
            "number_type",
            name="uq_price_override_route",
        ),
    )
    with op.batch_alter_table("price_overrides", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_price_overrides_application_id"), ["application_id"], unique=False
        )
    with op.batch_alter_table("counters", schema=None) as batch_op:
        batch_op.alter_column(
            "value", existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=False
        )

    applications = sa.table(
        "applications", sa.column("id", sa.String()), sa.column("risk", sa.JSON())
    )
    conn = op.get_bind()
    for app_id, stored in conn.execute(sa.select(applications.c.id, applications.c.risk)).all():
        migrated = migrate_risk(_risk(stored))
        if migrated is not None:
            conn.execute(
                applications.update().where(applications.c.id == app_id).values(risk=migrated)
            )


def downgrade() -> None:
    with op.batch_alter_table("counters", schema=None) as batch_op:
        batch_op.alter_column(
            "value", existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=False
        )
    with op.batch_alter_table("price_overrides", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_price_overrides_application_id"))
    op.drop_table("price_overrides")
    with op.batch_alter_table("delivery_costs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_costs_verification_id"))
        batch_op.drop_index(batch_op.f("ix_delivery_costs_provider_message_id"))
        batch_op.drop_index("ix_delivery_costs_unpriced")
        batch_op.drop_index("ix_delivery_costs_app_mode_sent")
    op.drop_table("delivery_costs")
