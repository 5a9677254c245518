"""The event log and outbound webhooks: what each state change records and sends."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Any

from pydantic import Field

from otp.domain.base import PayloadModel
from otp.domain.enums import Channel, EventType, Mode, Status, WebhookEventType
from otp.domain.verification import VerificationState

# The event that records each terminal status.
TERMINAL_EVENT_OF: dict[Status, EventType] = {
    Status.APPROVED: EventType.APPROVED,
    Status.EXPIRED: EventType.EXPIRED,
    Status.MAX_ATTEMPTS_REACHED: EventType.MAX_ATTEMPTS_REACHED,
    Status.CANCELED: EventType.CANCELED,
    Status.UNDELIVERABLE: EventType.UNDELIVERABLE,
    Status.BLOCKED: EventType.BLOCKED,
}

WEBHOOK_EVENT_OF: dict[EventType, WebhookEventType] = {
    EventType.CREATED: WebhookEventType.CREATED,
    EventType.DELIVERED: WebhookEventType.DELIVERED,
    EventType.APPROVED: WebhookEventType.APPROVED,
    EventType.EXPIRED: WebhookEventType.EXPIRED,
    EventType.MAX_ATTEMPTS_REACHED: WebhookEventType.FAILED,
    EventType.UNDELIVERABLE: WebhookEventType.FAILED,
    EventType.CANCELED: WebhookEventType.CANCELED,
    EventType.BLOCKED: WebhookEventType.BLOCKED,
}


class WebhookEvent(PayloadModel):
    """One event to push to an application's endpoints (Standard Webhooks).

    `id` is the `webhook-id`: stable across every attempt and every endpoint, derived
    from the verification id and the event's log key so that a repeated dispatch of the
    same state change is recognisably the same message. `data` holds public fields only
    (masked destination, never a code).
    """

    id: str
    type: WebhookEventType | str
    application_id: str
    mode: Mode
    occurred_at: datetime
    verification_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


def webhook_message_id(verification_id: str, event_key: str) -> str:
    """`msg_` + 26 base32 characters of SHA-256(verification id, event key)."""
    digest = hashlib.sha256(f"{verification_id}\x1f{event_key}".encode()).digest()
    return "msg_" + base64.b32encode(digest).decode().lower()[:26]


class LogEntry(PayloadModel):
    """A state change noted by the workflow, written to the event log in one batch at the end.

    `key` identifies the change within its verification (`created`, `send:<delivery key>`,
    `check:<n>`, ...): writers that record the same change earlier (the API, the delivery
    activity) use the same key, so the log holds it once. Destinations are not carried:
    the recorder resolves them from the step index, masks and hashes them.
    """

    key: str
    type: EventType
    occurred_at: datetime
    channel: Channel | None = None
    provider: str | None = None
    provider_message_id: str | None = None
    step_index: int | None = None
    reason: str | None = None
    # The application's message template version a send used (None: the catalogue).
    template_version: int | None = None


class RecordVerificationInput(PayloadModel):
    verification_id: str
    state: VerificationState
    entries: list[LogEntry] = Field(default_factory=list)
    country: str | None = None
    final: bool = True


class RecordVerificationResult(PayloadModel):
    events_written: int
    webhooks_started: int
