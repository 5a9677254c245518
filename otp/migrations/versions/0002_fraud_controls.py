"""Fraud controls: rate-limit hits, counters, risk blocks, per-application risk settings,
and the number prefix of each verification.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 17:35:09.544995
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "counters",
        sa.Column("key", AutoString(length=200), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "rate_hits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", AutoString(length=200), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("cost", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rate_hits", schema=None) as batch_op:
        batch_op.create_index("ix_rate_hits_key_at", ["key", "at"], unique=False)

    op.create_table(
        "risk_blocks",
        sa.Column("id", AutoString(length=64), nullable=False),
        sa.Column("application_id", AutoString(length=64), nullable=False),
        sa.Column("mode", AutoString(length=8), nullable=False),
        sa.Column("scope", AutoString(length=16), nullable=False),
        sa.Column("value", AutoString(length=16), nullable=False),
        sa.Column("reason", AutoString(length=300), nullable=False),
        sa.Column("automatic", sa.Boolean(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("lifted_at", UTCDateTime(), nullable=True),
        sa.Column("lifted_by", AutoString(length=120), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("risk_blocks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_risk_blocks_scope", ["application_id", "mode", "scope", "value"], unique=False
        )

    with op.batch_alter_table("applications", schema=None) as batch_op:
        # Existing applications get the safe defaults (an empty object).
        batch_op.add_column(sa.Column("risk", sa.JSON(), nullable=False, server_default="{}"))

    with op.batch_alter_table("verifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prefix", AutoString(length=16), nullable=True))
        batch_op.create_index(batch_op.f("ix_verifications_prefix"), ["prefix"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("verifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_verifications_prefix"))
        batch_op.drop_column("prefix")

    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.drop_column("risk")

    with op.batch_alter_table("risk_blocks", schema=None) as batch_op:
        batch_op.drop_index("ix_risk_blocks_scope")

    op.drop_table("risk_blocks")
    with op.batch_alter_table("rate_hits", schema=None) as batch_op:
        batch_op.drop_index("ix_rate_hits_key_at")

    op.drop_table("rate_hits")
    op.drop_table("counters")
