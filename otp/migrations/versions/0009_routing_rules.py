"""Routing rules of each application: providers and sender per channel, country, prefix.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 20:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "routing_rules",
        sa.Column("id", AutoString(length=64), nullable=False),
        sa.Column("application_id", AutoString(length=64), nullable=False),
        sa.Column("channel", AutoString(length=16), nullable=False),
        sa.Column("country", AutoString(length=2), nullable=False),
        sa.Column("prefix", AutoString(length=16), nullable=False),
        sa.Column("providers", sa.JSON(), nullable=False),
        sa.Column("sender_type", AutoString(length=32), nullable=True),
        sa.Column("sender_value", AutoString(length=64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("routing_rules", schema=None) as batch_op:
        batch_op.create_index(
            "ux_routing_rules_match",
            ["application_id", "channel", "country", "prefix"],
            unique=True,
        )


def downgrade() -> None:
    with op.batch_alter_table("routing_rules", schema=None) as batch_op:
        batch_op.drop_index("ux_routing_rules_match")
    op.drop_table("routing_rules")
