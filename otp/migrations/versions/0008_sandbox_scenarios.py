"""Sandbox scenarios: the failures test mode simulates, per application.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 20:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sandbox_scenarios",
        sa.Column("id", AutoString(length=64), nullable=False),
        sa.Column("application_id", AutoString(length=64), nullable=False),
        sa.Column("kind", AutoString(length=32), nullable=False),
        sa.Column("to_hash", AutoString(length=64), nullable=True),
        sa.Column("to_masked", AutoString(length=32), nullable=True),
        sa.Column("country", AutoString(length=2), nullable=True),
        sa.Column("prefix", AutoString(length=16), nullable=True),
        sa.Column("channel", AutoString(length=16), nullable=True),
        sa.Column("error_code", AutoString(length=8), nullable=True),
        sa.Column("delay_s", sa.Integer(), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("note", AutoString(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sandbox_scenarios", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sandbox_scenarios_app", ["application_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sandbox_scenarios", schema=None) as batch_op:
        batch_op.drop_index("ix_sandbox_scenarios_app")
    op.drop_table("sandbox_scenarios")
