"""Searching the verification records, and a verification's event log."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from api.schemas.base import ResponseModel
from otp.domain import Channel, Mode, Status
from otp.store import VerificationRecord
from otp.store.tables import VerificationEvent


class VerificationSummary(ResponseModel):
    """A verification as the store records it (kept after Temporal forgets it)."""

    id: str
    status: Status
    reason: str | None = None
    mode: Mode
    channel: Channel | None = Field(default=None, description="Channel in use last.")
    channels: list[Channel] = Field(description="The channel plan.")
    country: str | None = None
    to: str = Field(description="Masked destination of the first step.")
    client_ref: str | None = None
    created_at: datetime
    expires_at: datetime
    finished_at: datetime | None = None
    attempts_used: int
    sends: int
    delivered: bool = Field(description="A provider confirmed delivery of at least one send.")
    fallbacks: int = Field(description="How many times the plan moved to its next step.")
    time_to_verify_ms: int | None = None

    @classmethod
    def of(cls, record: VerificationRecord) -> VerificationSummary:
        return cls(
            id=record.id,
            status=Status(record.status),
            reason=record.reason,
            mode=record.mode,
            channel=Channel(record.channel) if record.channel else None,
            channels=[Channel(c) for c in record.channels],
            country=record.country,
            to=record.to_masked,
            client_ref=record.client_ref,
            created_at=record.created_at,
            expires_at=record.expires_at,
            finished_at=record.finished_at,
            attempts_used=record.attempts_used,
            sends=record.sends,
            delivered=record.delivered,
            fallbacks=record.fallbacks,
            time_to_verify_ms=record.time_to_verify_ms,
        )


class VerificationPage(ResponseModel):
    data: list[VerificationSummary]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; absent on the last."
    )


class EventPublic(ResponseModel):
    type: str = Field(
        description="created, send_attempted, send_error, sent, delivered, failed, fallback, "
        "check_failed, "
        "approved, expired, max_attempts_reached, canceled, blocked or undeliverable."
    )
    occurred_at: datetime
    channel: str | None = None
    provider: str | None = None
    provider_message_id: str | None = None
    country: str | None = None
    to: str | None = Field(default=None, description="Masked destination.")
    step_index: int | None = None
    reason: str | None = None
    template_version: int | None = Field(
        default=None,
        description="Sends: the application's message template version (null: the catalogue).",
    )

    @classmethod
    def of(cls, event: VerificationEvent) -> EventPublic:
        return cls(
            type=event.type,
            occurred_at=event.occurred_at,
            channel=event.channel,
            provider=event.provider,
            provider_message_id=event.provider_message_id,
            country=event.country,
            to=event.to_masked,
            step_index=event.step_index,
            reason=event.reason,
            template_version=event.template_version,
        )


class VerificationEvents(ResponseModel):
    id: str
    data: list[EventPublic]
