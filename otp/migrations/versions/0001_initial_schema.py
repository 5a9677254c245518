"""Initial schema: applications, keys, verifications, events, idempotency, webhooks.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 16:40:42.532875
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "applications",
        sa.Column("id", AutoString(length=64), nullable=False),
        sa.Column("name", AutoString(length=120), nullable=False),
        sa.Column("brand", AutoString(length=60), nullable=False),
        sa.Column("defaults", sa.JSON(), nullable=False),
        sa.Column("allowed_channels", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("application_id", AutoString(length=64), nullable=False),
        sa.Column("mode", AutoString(length=8), nullable=False),
        sa.Column("scope", AutoString(length=160), nullable=False),
        sa.Column("key", AutoString(length=255), nullable=False),
        sa.Column("fingerprint", AutoString(length=64), nullable=False),
        sa.Column("state", AutoString(length=16), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", AutoString(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("locked_until", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("application_id", "mode", "scope", "key"),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_idempotency_keys_expires_at"), ["expires_at"], unique=False
        )

    # Databases made by the first release (tables created without migrations) have it.
    if not sa.inspect(op.get_bind()).has_table("sandbox_messages"):
        op.create_table(
            "sandbox_messages",
            sa.Column("message_id", AutoString(length=64), nullable=False),
            sa.Column("verification_id", AutoString(length=64), nullable=False),
            sa.Column("application_id", AutoString(length=64), nullable=False),
            sa.Column("channel", AutoString(length=16), nullable=False),
            sa.Column("to", AutoString(length=320), nullable=False),
            sa.Column("subject", AutoString(length=512), nullable=False),
            sa.Column("body", AutoString(), nullable=False),
            sa.Column("created_at", UTCDateTime(), nullable=False),
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("idempotency_key", AutoString(length=255), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("idempotency_key"),
        )
        with op.batch_alter_table("sandbox_messages", schema=None) as batch_op:
            batch_op.create_index(
                batch_op.f("ix_sandbox_messages_application_id"), ["application_id"], unique=False
            )
            batch_op.create_index(
                batch_op.f("ix_sandbox_messages_message_id"), ["message_id"], unique=True
            )
            batch_op.create_index(batch_op.f("ix_sandbox_messages_to"), ["to"], unique=False)
            batch_op.create_index(
                batch_op.f("ix_sandbox_messages_verification_id"), ["verification_id"], unique=False
            )

    op.create_table(
        "verification_destinations",
        sa.Column("verification_id", AutoString(length=64), nullable=False),
        sa.Column("destination_hash", AutoString(length=64), nullable=False),
        sa.Column("channel", AutoString(length=16), nullable=False),
        sa.PrimaryKeyConstraint("verification_id", "destination_hash"),
    )
    with op.batch_alter_table("verification_destinations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_verification_destinations_destination_hash"),
            ["destination_hash"],
            unique=False,
        )

    op.create_table(
        "verification_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("verification_id", AutoString(length=64), nullable=False),
        sa.Column("key", AutoString(length=128), nullable=False),
        sa.Column("application_id", AutoString(length=64), nullable=False),
        sa.Column("mode", AutoString(length=8), nullable=False),
        sa.Column("type", AutoString(length=32), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("channel", AutoString(length=16), nullable=True),
        sa.Column("provider", AutoString(length=40), nullable=True),
        sa.Column("provider_message_id", AutoString(length=128), nullable=True),
        sa.Column("country", AutoString(length=2), nullable=True),
        sa.Column("to_masked", AutoString(length=320), nullable=True),
        sa.Column("destination_hash", AutoString(length=64), nullable=True),
        sa.Column("step_index", sa.Integer(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("reason", AutoString(length=300), nullable=True),
        sa.Column("webhooks_dispatched", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("verification_id", "key", name="uq_event_key"),
    )
    with op.batch_alter_table("verification_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_verification_events_application_id"), ["application_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_verification_events_occurred_at"), ["occurred_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_verification_events_type"), ["type"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_verification_events_verification_id"), ["verification_id"], unique=False
        )

    op.create_table(
        "verifications",
        sa.Column("id", AutoString(length=64), nullable=False),
        sa.Column("application_id", AutoString(length=64), nullable=False),
        sa.Column("mode", AutoString(length=8), nullable=False),
        sa.Column("status", AutoString(length=32), nullable=False),
        sa.Column("reason", AutoString(length=300), nullable=True),
        sa.Column("first_channel", AutoString(length=16), nullable=False),
        sa.Column("channel", AutoString(length=16), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("country", AutoString(length=2), nullable=True),
        sa.Column("to_masked", AutoString(length=320), nullable=False),
        sa.Column("client_ref", AutoString(length=128), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("attempts_used", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("sends", sa.Integer(), nullable=False),
        sa.Column("wrong_checks", sa.Integer(), nullable=False),
        sa.Column("fallbacks", sa.Integer(), nullable=False),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("time_to_verify_ms", sa.Integer(), nullable=True),
        sa.Column("time_to_deliver_ms", sa.Integer(), nullable=True),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("verifications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_verifications_app_mode_created",
            ["application_id", "mode", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_verifications_channel"), ["channel"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_verifications_client_ref"), ["client_ref"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_verifications_country"), ["country"], unique=False)
        batch_op.create_index(batch_op.f("ix_verifications_status"), ["status"], unique=False)

    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", AutoString(length=64), nullable=False),
        sa.Column("endpoint_id", AutoString(length=64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("attempted_at", UTCDateTime(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", AutoString(length=300), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id", "endpoint_id", "attempt", name="uq_webhook_attempt"),
    )
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_attempts_endpoint_id"), ["endpoint_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_webhook_attempts_message_id"), ["message_id"], unique=False
        )

    op.create_table(
        "webhook_endpoints",
        sa.Column("id", AutoString(length=64), nullable=False),
        sa.Column("application_id", AutoString(length=64), nullable=False),
        sa.Column("mode", AutoString(length=8), nullable=False),
        sa.Column("url", AutoString(length=2048), nullable=False),
        sa.Column("description", AutoString(length=300), nullable=False),
        sa.Column("secret_sealed", AutoString(), nullable=False),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", AutoString(length=300), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_endpoints_application_id"), ["application_id"], unique=False
        )

    op.create_table(
        "webhook_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", AutoString(length=64), nullable=False),
        sa.Column("endpoint_id", AutoString(length=64), nullable=False),
        sa.Column("application_id", AutoString(length=64), nullable=False),
        sa.Column("mode", AutoString(length=8), nullable=False),
        sa.Column("event_type", AutoString(length=64), nullable=False),
        sa.Column("verification_id", AutoString(length=64), nullable=True),
        sa.Column("status", AutoString(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id", "endpoint_id", name="uq_webhook_message"),
    )
    with op.batch_alter_table("webhook_messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_messages_application_id"), ["application_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_webhook_messages_endpoint_id"), ["endpoint_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_webhook_messages_message_id"), ["message_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_webhook_messages_verification_id"), ["verification_id"], unique=False
        )

    op.create_table(
        "api_keys",
        sa.Column("id", AutoString(length=64), nullable=False),
        sa.Column("application_id", AutoString(length=64), nullable=False),
        sa.Column("mode", AutoString(length=8), nullable=False),
        sa.Column("name", AutoString(length=120), nullable=False),
        sa.Column("key_hash", AutoString(length=64), nullable=False),
        sa.Column("hint", AutoString(length=32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_api_keys_application_id"), ["application_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_application_id"))

    op.drop_table("api_keys")
    with op.batch_alter_table("webhook_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_messages_verification_id"))
        batch_op.drop_index(batch_op.f("ix_webhook_messages_message_id"))
        batch_op.drop_index(batch_op.f("ix_webhook_messages_endpoint_id"))
        batch_op.drop_index(batch_op.f("ix_webhook_messages_application_id"))

    op.drop_table("webhook_messages")
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_endpoints_application_id"))

    op.drop_table("webhook_endpoints")
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_attempts_message_id"))
        batch_op.drop_index(batch_op.f("ix_webhook_attempts_endpoint_id"))

    op.drop_table("webhook_attempts")
    with op.batch_alter_table("verifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_verifications_status"))
        batch_op.drop_index(batch_op.f("ix_verifications_country"))
        batch_op.drop_index(batch_op.f("ix_verifications_client_ref"))
        batch_op.drop_index(batch_op.f("ix_verifications_channel"))
        batch_op.drop_index("ix_verifications_app_mode_created")

    op.drop_table("verifications")
    with op.batch_alter_table("verification_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_verification_events_verification_id"))
        batch_op.drop_index(batch_op.f("ix_verification_events_type"))
        batch_op.drop_index(batch_op.f("ix_verification_events_occurred_at"))
        batch_op.drop_index(batch_op.f("ix_verification_events_application_id"))

    op.drop_table("verification_events")
    with op.batch_alter_table("verification_destinations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_verification_destinations_destination_hash"))

    op.drop_table("verification_destinations")
    with op.batch_alter_table("sandbox_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sandbox_messages_verification_id"))
        batch_op.drop_index(batch_op.f("ix_sandbox_messages_to"))
        batch_op.drop_index(batch_op.f("ix_sandbox_messages_message_id"))
        batch_op.drop_index(batch_op.f("ix_sandbox_messages_application_id"))

    op.drop_table("sandbox_messages")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_keys_expires_at"))

    op.drop_table("idempotency_keys")
    op.drop_table("applications")
