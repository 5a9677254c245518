"""Message templates of each application (versioned), and the version each send used.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 20:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "message_templates",
        sa.Column("id", AutoString(length=64), nullable=False),
        sa.Column("application_id", AutoString(length=64), nullable=False),
        sa.Column("channel", AutoString(length=16), nullable=False),
        sa.Column("locale", AutoString(length=35), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("text", AutoString(), nullable=False),
        sa.Column("subject", AutoString(), nullable=True),
        sa.Column("html", AutoString(), nullable=True),
        sa.Column("whatsapp_template_name", AutoString(length=512), nullable=True),
        sa.Column("whatsapp_language", AutoString(length=16), nullable=True),
        sa.Column("created_by", AutoString(length=120), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("deactivated_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("application_id", "version", name="uq_message_template_version"),
    )
    with op.batch_alter_table("message_templates", schema=None) as batch_op:
        batch_op.create_index(
            "ix_message_templates_lookup",
            ["application_id", "channel", "locale", "active"],
            unique=False,
        )
    with op.batch_alter_table("verification_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("template_version", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("verification_events", schema=None) as batch_op:
        batch_op.drop_column("template_version")
    with op.batch_alter_table("message_templates", schema=None) as batch_op:
        batch_op.drop_index("ix_message_templates_lookup")
    op.drop_table("message_templates")
