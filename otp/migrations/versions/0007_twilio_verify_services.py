"""Twilio Verify v2 services (`VA...`) of each application, for the compatible API.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 19:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "twilio_verify_services",
        sa.Column("sid", AutoString(length=34), nullable=False),
        sa.Column("application_id", AutoString(length=64), nullable=False),
        sa.Column("friendly_name", AutoString(length=64), nullable=False),
        sa.Column("code_length", sa.Integer(), nullable=False),
        sa.Column("lookup_enabled", sa.Boolean(), nullable=False),
        sa.Column("psd2_enabled", sa.Boolean(), nullable=False),
        sa.Column("skip_sms_to_landlines", sa.Boolean(), nullable=False),
        sa.Column("dtmf_input_required", sa.Boolean(), nullable=False),
        sa.Column("tts_name", AutoString(length=64), nullable=True),
        sa.Column("do_not_share_warning_enabled", sa.Boolean(), nullable=False),
        sa.Column("custom_code_enabled", sa.Boolean(), nullable=False),
        sa.Column("default_template_sid", AutoString(length=34), nullable=True),
        sa.Column("verify_event_subscription_enabled", sa.Boolean(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"]),
        sa.PrimaryKeyConstraint("sid"),
    )
    with op.batch_alter_table("twilio_verify_services", schema=None) as batch_op:
        batch_op.create_index(
            "ix_twilio_verify_services_app", ["application_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("twilio_verify_services", schema=None) as batch_op:
        batch_op.drop_index("ix_twilio_verify_services_app")
    op.drop_table("twilio_verify_services")
