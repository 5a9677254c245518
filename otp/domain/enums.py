"""The enumerations of a verification's life: channels, modes, statuses, events."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    SMS = "sms"
    WHATSAPP = "whatsapp"
    VOICE = "voice"
    EMAIL = "email"

    @property
    def is_phone(self) -> bool:
        return self is not Channel.EMAIL


class CodeType(StrEnum):
    NUMERIC = "numeric"
    ALPHANUMERIC = "alphanumeric"


class Mode(StrEnum):
    TEST = "test"
    LIVE = "live"


class Status(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    EXPIRED = "expired"
    MAX_ATTEMPTS_REACHED = "max_attempts_reached"
    CANCELED = "canceled"
    UNDELIVERABLE = "undeliverable"
    BLOCKED = "blocked"

    @property
    def is_terminal(self) -> bool:
        return self is not Status.PENDING


class DeliveryStatus(StrEnum):
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"


class DeliveryKind(StrEnum):
    STEP = "step"
    RESEND = "resend"


class EventType(StrEnum):
    """Every state change of a verification, as recorded in the event log."""

    CREATED = "created"
    SEND_ATTEMPTED = "send_attempted"
    SEND_ERROR = "send_error"  # one try failed transiently; the delivery retries in its step
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"  # one delivery failed (the verification may still succeed)
    FALLBACK = "fallback"
    CHECK_FAILED = "check_failed"
    APPROVED = "approved"
    EXPIRED = "expired"
    MAX_ATTEMPTS_REACHED = "max_attempts_reached"
    CANCELED = "canceled"
    BLOCKED = "blocked"
    UNDELIVERABLE = "undeliverable"


class WebhookEventType(StrEnum):
    """Event types an application's webhook endpoints can subscribe to."""

    CREATED = "verification.created"
    DELIVERED = "verification.delivered"
    APPROVED = "verification.approved"
    EXPIRED = "verification.expired"
    FAILED = "verification.failed"  # terminal: undeliverable or max attempts reached
    CANCELED = "verification.canceled"
    BLOCKED = "verification.blocked"
    # Not a verification's state change: a destination reached `max_failed_checks`.
    DESTINATION_LOCKED = "destination.locked"
    # Not a verification's: an alert rule's condition started (or stopped) holding.
    ALERT_TRIGGERED = "alert.triggered"
    ALERT_RESOLVED = "alert.resolved"
