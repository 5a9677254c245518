"""Alerts: applications' alert rules and one row per alert episode.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 01:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_rules",
        sa.Column("application_id", AutoString(length=64), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"]),
        sa.PrimaryKeyConstraint("application_id"),
    )
    op.create_table(
        "alerts",
        sa.Column("id", AutoString(length=64), nullable=False),
        sa.Column("application_id", AutoString(length=64), nullable=False),
        sa.Column("mode", AutoString(length=8), nullable=False),
        sa.Column("rule", AutoString(length=32), nullable=False),
        sa.Column("scope", AutoString(length=120), nullable=False),
        sa.Column("state", AutoString(length=16), nullable=False),
        sa.Column("open_key", AutoString(length=256), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("resolved_evidence", sa.JSON(), nullable=True),
        sa.Column("deliveries", sa.JSON(), nullable=False),
        sa.Column("triggered_notified", sa.Boolean(), nullable=False),
        sa.Column("resolved_notified", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_alerts_app_mode_started", ["application_id", "mode", "started_at"], unique=False
        )
        batch_op.create_index("ix_alerts_state", ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_alerts_open_key"), ["open_key"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_open_key"))
        batch_op.drop_index("ix_alerts_state")
        batch_op.drop_index("ix_alerts_app_mode_started")
    op.drop_table("alerts")
    op.drop_table("alert_rules")
