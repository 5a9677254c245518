"""Domain types shared by the API, the workflow and the activities.

Every object that crosses a Temporal boundary is one of these pydantic models
(one typed input, one typed result). New fields always get defaults so that
histories recorded by older code still decode.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

TASK_QUEUE = "otp-verifications"
WORKFLOW_ID_PREFIX = "ver_"


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


class _Model(BaseModel):
    model_config = ConfigDict(frozen=False, extra="ignore")


# --- policy bounds (validated by the API, enforced again by the workflow) ---
STEP_TIMEOUT_MIN_S = 5
STEP_TIMEOUT_MAX_S = 3600
STEP_TIMEOUT_DEFAULT_S = 60
CODE_LENGTH_MIN = 4
CODE_LENGTH_MAX = 10
TTL_MIN_S = 60
TTL_MAX_S = 86400
MAX_ATTEMPTS_MAX = 10
MAX_SENDS_MAX = 10
MAX_PLAN_STEPS = 8


class ChannelStep(_Model):
    """One step of a channel plan: where to deliver and how long to wait before falling back."""

    channel: Channel
    to: str
    timeout_s: int = Field(
        default=STEP_TIMEOUT_DEFAULT_S, ge=STEP_TIMEOUT_MIN_S, le=STEP_TIMEOUT_MAX_S
    )
    # Live mode: providers in failover order (empty: the channel's default; test: sandbox).
    providers: list[str] = Field(default_factory=list)


class VerificationInput(_Model):
    """Start arguments of VerificationWorkflow. Destinations are PII: payloads are encrypted."""

    application_id: str
    mode: Mode
    channels: list[ChannelStep]
    code_length: int = 6
    code_type: CodeType = CodeType.NUMERIC
    ttl_s: int = 600
    max_attempts: int = 5
    max_sends: int = 5
    resend_cooldown_s: int = 30
    locale: str = "en"
    brand: str = ""
    client_ref: str | None = None
    country: str | None = None
    created_at: datetime | None = None
    # Transient failures tolerated per provider before the next provider of the step.
    provider_max_attempts: int = 3
    web_domain: str | None = None
    app_hash: str | None = None
    # The issued code, as its nonce and keyed digest (the API issues it with the start, so
    # the workflow needs no activity for it). Absent in histories of the first release:
    # then the workflow issues the code with a local activity.
    code_nonce: str | None = None
    code_digest: str | None = None
    # Growth of the resend cooldown after each resend (the application's risk setting);
    # 1.0, as in histories recorded before it existed, keeps it constant.
    resend_backoff: float = 1.0


class IssueCodeInput(_Model):
    verification_id: str
    code_length: int
    code_type: CodeType


class IssueCodeResult(_Model):
    """The code itself never leaves the activity: only its nonce and keyed digest do."""

    nonce: str
    digest: str


class DeliverInput(_Model):
    verification_id: str
    application_id: str
    mode: Mode
    step_index: int
    kind: DeliveryKind = DeliveryKind.STEP
    channel: Channel
    to: str
    provider: str | None = None
    nonce: str
    code_length: int
    code_type: CodeType
    locale: str = "en"
    brand: str = ""
    expires_at: datetime
    # `<verification id>:<run id>:<n>`: the same for every retry of this delivery; the
    # provider's idempotency key and the reference its receipts carry back.
    delivery_key: str | None = None
    web_domain: str | None = None
    app_hash: str | None = None
    country: str | None = None
    # The API already charged this send's limits when it created the verification (its
    # very first delivery): the delivery gate does not charge them again.
    precounted: bool = False
    # The member the delivery gate charges the send limits with: the same for every
    # provider try of one delivery (failover), so a delivery counts once. None: the
    # delivery key (histories from before it).
    limit_member: str | None = None


class DeliverResult(_Model):
    provider: str
    provider_message_id: str
    status: DeliveryStatus = DeliveryStatus.SENT


class DeliveryAttempt(_Model):
    """One delivery of the code (a plan step or a resend), as recorded by the workflow."""

    step_index: int
    kind: DeliveryKind = DeliveryKind.STEP
    channel: Channel
    provider: str | None = None
    provider_message_id: str | None = None
    reference: str | None = None
    status: DeliveryStatus = DeliveryStatus.SENDING
    error_type: str | None = None
    started_at: datetime
    updated_at: datetime


class CheckInput(_Model):
    """A submitted code, as its keyed digest, plus the caller's scope."""

    digest: str
    application_id: str
    mode: Mode


class CheckResult(_Model):
    status: Status
    valid: bool
    attempts_remaining: int
    attempts_used: int = 0  # this check's number: the key of its event in the log


class ScopedInput(_Model):
    """Input of updates that only need the caller's scope (resend, next channel, cancel)."""

    application_id: str
    mode: Mode


class ResendResult(_Model):
    delivery: DeliveryAttempt
    sends_remaining: int
    next_resend_at: datetime


class NextChannelResult(_Model):
    step_index: int
    delivery: DeliveryAttempt


class CancelResult(_Model):
    status: Status


class DeliveryReceiptInput(_Model):
    """A provider's delivery receipt, forwarded by the API as a signal.

    `reference` is the delivery's own key (DeliverInput.delivery_key, echoed by the
    provider in its callback), which maps a receipt even when the send's outcome, and so
    the provider's message id, was never learned.
    """

    provider: str
    provider_message_id: str
    status: DeliveryStatus
    error_code: str | None = None
    reference: str | None = None


def verification_id_of_reference(reference: str) -> str | None:
    """The verification id a delivery key starts with (`ver_...:<run>:<seq>`), if any."""
    head = reference.split(":", 1)[0]
    return head if head.startswith(WORKFLOW_ID_PREFIX) and len(head) <= 80 else None


class StateQueryInput(_Model):
    pass


class VerificationState(_Model):
    """What the workflow knows: answered by the `state` query and returned as the result."""

    application_id: str
    mode: Mode
    status: Status = Status.PENDING
    reason: str | None = None
    created_at: datetime
    expires_at: datetime
    finished_at: datetime | None = None
    current_step: int = 0
    channels: list[ChannelStep] = Field(default_factory=list)
    deliveries: list[DeliveryAttempt] = Field(default_factory=list)
    max_attempts: int
    attempts_used: int = 0
    sends: int = 0
    max_sends: int
    next_resend_at: datetime | None = None
    code_issued: bool = False
    client_ref: str | None = None
    locale: str = "en"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def attempts_remaining(self) -> int:
        return max(0, self.max_attempts - self.attempts_used)

    @classmethod
    def initial(cls, input: VerificationInput, created_at: datetime) -> VerificationState:
        """The state of a verification just started with `input`."""
        return cls(
            application_id=input.application_id,
            mode=input.mode,
            created_at=created_at,
            expires_at=created_at + timedelta(seconds=input.ttl_s),
            channels=input.channels,
            max_attempts=input.max_attempts,
            max_sends=input.max_sends,
            client_ref=input.client_ref,
            locale=input.locale,
        )


# --- business error types carried as ApplicationError.type (stable, part of the API mapping) ---
class ErrorType:
    NOT_FOUND = "VerificationNotFound"
    FINISHED = "VerificationFinished"
    INVALID_INPUT = "InvalidInput"
    RESEND_COOLDOWN = "ResendCooldown"
    MAX_SENDS = "MaxSendsReached"
    NO_MORE_CHANNELS = "NoMoreChannels"
    PERMANENT_DELIVERY = "PermanentDeliveryFailure"
    TRANSIENT_DELIVERY = "TransientDeliveryFailure"
    # A risk gate refused the send: the verification ends `blocked`. The first detail is
    # {"reason": "<why, for the record; no destination>", "code": "<short_identifier>"};
    # the code shows in the OtpReason search attribute as `blocked:<code>`.
    BLOCKED = "Blocked"
    # A resend refused by the delivery gate: the update fails, the verification and its
    # code stay as they were. Details: {"code": "<short_identifier>", "limit": "<limit
    # name>" or None, "retry_after_s": <seconds until the limit has room> or None (a block)}.
    RESEND_REFUSED = "ResendRefused"


# --- activity names (the workflow calls activities by name; the worker registers these) ---
ACTIVITY_ISSUE_CODE = "issue_code"
ACTIVITY_DELIVER = "deliver"


# --- events and webhooks ---
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


class WebhookEvent(_Model):
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


class LogEntry(_Model):
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


class RecordVerificationInput(_Model):
    verification_id: str
    state: VerificationState
    entries: list[LogEntry] = Field(default_factory=list)
    country: str | None = None
    final: bool = True


class RecordVerificationResult(_Model):
    events_written: int
    webhooks_started: int


ACTIVITY_RECORD = "record_verification"
