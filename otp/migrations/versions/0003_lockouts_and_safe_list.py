"""Lockouts after too many failed checks (listed and lifted by operators) and the safe
list of destinations exempt from velocity limits and conversion blocks.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 19:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lockouts",
        sa.Column("id", AutoString(length=64), nullable=False),
        sa.Column("application_id", AutoString(length=64), nullable=False),
        sa.Column("mode", AutoString(length=8), nullable=False),
        sa.Column("destination_hash", AutoString(length=64), nullable=False),
        sa.Column("to_masked", AutoString(length=320), nullable=False),
        sa.Column("channel", AutoString(length=16), nullable=True),
        sa.Column("failed_count", sa.Integer(), nullable=False),
        sa.Column("since", UTCDateTime(), nullable=False),
        sa.Column("until", UTCDateTime(), nullable=False),
        sa.Column("lifted_at", UTCDateTime(), nullable=True),
        sa.Column("lifted_by", AutoString(length=120), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("lockouts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_lockouts_destination",
            ["application_id", "mode", "destination_hash"],
            unique=False,
        )
        batch_op.create_index("ix_lockouts_until", ["until"], unique=False)

    op.create_table(
        "safe_list",
        sa.Column("id", AutoString(length=64), nullable=False),
        sa.Column("application_id", AutoString(length=64), nullable=False),
        sa.Column("mode", AutoString(length=8), nullable=False),
        sa.Column("destination_hash", AutoString(length=64), nullable=False),
        sa.Column("to_masked", AutoString(length=320), nullable=False),
        sa.Column("note", AutoString(length=200), nullable=False),
        sa.Column("added_by", AutoString(length=120), nullable=False),
        sa.Column("added_at", UTCDateTime(), nullable=False),
        sa.Column("removed_at", UTCDateTime(), nullable=True),
        sa.Column("removed_by", AutoString(length=120), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("safe_list", schema=None) as batch_op:
        batch_op.create_index(
            "ix_safe_list_destination",
            ["application_id", "mode", "destination_hash"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("safe_list", schema=None) as batch_op:
        batch_op.drop_index("ix_safe_list_destination")
    op.drop_table("safe_list")
    with op.batch_alter_table("lockouts", schema=None) as batch_op:
        batch_op.drop_index("ix_lockouts_until")
        batch_op.drop_index("ix_lockouts_destination")
    op.drop_table("lockouts")
