"""Per-application provider accounts (credentials sealed at rest).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 20:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "provider_accounts",
        sa.Column("id", AutoString(length=64), nullable=False),
        sa.Column("application_id", AutoString(length=64), nullable=False),
        sa.Column("provider", AutoString(length=32), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("secrets_sealed", AutoString(), nullable=False),
        sa.Column("secret_hints", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("application_id", "provider", name="uq_provider_accounts_app_provider"),
    )


def downgrade() -> None:
    op.drop_table("provider_accounts")
