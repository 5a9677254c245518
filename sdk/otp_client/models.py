"""What the API answers, as typed models.

Written by hand from the service's OpenAPI document (`GET /openapi.json`). Every model
ignores fields it does not know, so a newer service does not break an older client.
Enumerated values (status, channel, ...) are plain strings for the same reason; the
`StrEnum` classes below name the values known today and compare equal to them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Status(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    EXPIRED = "expired"
    MAX_ATTEMPTS_REACHED = "max_attempts_reached"
    CANCELED = "canceled"
    UNDELIVERABLE = "undeliverable"
    BLOCKED = "blocked"


class Channel(StrEnum):
    SMS = "sms"
    WHATSAPP = "whatsapp"
    VOICE = "voice"
    EMAIL = "email"


class CodeType(StrEnum):
    NUMERIC = "numeric"
    ALPHANUMERIC = "alphanumeric"


class Mode(StrEnum):
    TEST = "test"
    LIVE = "live"


class WebhookEventType(StrEnum):
    CREATED = "verification.created"
    DELIVERED = "verification.delivered"
    APPROVED = "verification.approved"
    EXPIRED = "verification.expired"
    FAILED = "verification.failed"
    CANCELED = "verification.canceled"
    BLOCKED = "verification.blocked"
    LOCKED = "destination.locked"
    TEST = "webhook.test"


class ApiModel(BaseModel):
    """Base of every response model: unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


# ------------------------------------------------------------------ requests
class ChannelStep(BaseModel):
    """One step of a channel plan, as sent on create (`None` fields take the API's defaults)."""

    model_config = ConfigDict(extra="forbid")

    channel: str
    to: str | None = None
    timeout_s: int | None = None


# ------------------------------------------------------------- verifications
class ChannelStepInfo(ApiModel):
    """A step of a verification's plan, destination masked."""

    channel: str
    to: str
    timeout_s: int


class Sender(ApiModel):
    """The sender a routing rule picked: its type and value."""

    type: str  # "alphanumeric", "long_code", "short_code", "messaging_service", ...
    value: str


class Cost(ApiModel):
    """What one delivery costs (decimal strings in the service's currency)."""

    amount: str  # the provider's price once known, else the estimate
    currency: str
    estimate: str
    reported: str | None = None
    reported_currency: str | None = None
    source: str  # "table", "default" (flagged: unknown country), "override" or "free"
    units: int
    unit: str  # "segment", "message" or "minute"


class Delivery(ApiModel):
    """One delivery of the code: a plan step's send or a resend."""

    step_index: int
    kind: str  # "step" or "resend"
    channel: str
    provider: str | None = None
    status: str  # "sending", "sent", "delivered" or "failed"
    error_type: str | None = None
    started_at: datetime
    updated_at: datetime
    rule_id: str | None = None  # the application's routing rule, if one chose the provider
    sender: Sender | None = None  # the rule's sender (None: the provider's own)
    template_version: int | None = None  # the application's template (None: the catalogue)
    cost: Cost | None = None


class VerificationCreated(ApiModel):
    """A verification as it was started (`POST /v1/verifications`)."""

    id: str
    status: str
    mode: str
    to: str
    channels: list[ChannelStepInfo]
    code_length: int
    code_type: str
    locale: str
    max_attempts: int
    attempts_remaining: int
    created_at: datetime
    expires_at: datetime
    client_ref: str | None = None


class Verification(ApiModel):
    """A verification now (`GET /v1/verifications/{id}`)."""

    id: str
    status: str
    reason: str | None = None
    mode: str
    to: str
    channels: list[ChannelStepInfo]
    current_step: int
    deliveries: list[Delivery]
    attempts_used: int
    attempts_remaining: int
    max_attempts: int
    sends: int
    max_sends: int
    next_resend_at: datetime | None = None
    created_at: datetime
    expires_at: datetime
    finished_at: datetime | None = None
    client_ref: str | None = None
    locale: str
    cost: str | None = None  # the total so far (decimal string), None when not costed
    currency: str | None = None

    @property
    def is_finished(self) -> bool:
        return self.status != Status.PENDING


class CheckResult(ApiModel):
    """The answer to a check: `valid` with status `approved`, or a wrong code."""

    id: str
    status: str
    valid: bool
    attempts_remaining: int


class ResendResult(ApiModel):
    id: str
    delivery: Delivery
    sends_remaining: int
    next_resend_at: datetime


class NextChannelResult(ApiModel):
    id: str
    step_index: int
    delivery: Delivery


class CancelResult(ApiModel):
    id: str
    status: str


# ------------------------------------------------- search, events, analytics
class VerificationSummary(ApiModel):
    """A verification as the store records it (kept after Temporal forgets it)."""

    id: str
    status: str
    reason: str | None = None
    mode: str
    channel: str | None = None
    channels: list[str]
    country: str | None = None
    to: str
    client_ref: str | None = None
    created_at: datetime
    expires_at: datetime
    finished_at: datetime | None = None
    attempts_used: int
    sends: int
    delivered: bool
    fallbacks: int
    time_to_verify_ms: int | None = None


class VerificationPage(ApiModel):
    data: list[VerificationSummary]
    next_cursor: str | None = None


class Event(ApiModel):
    """One entry of a verification's event log."""

    type: str
    occurred_at: datetime
    channel: str | None = None
    provider: str | None = None
    provider_message_id: str | None = None
    country: str | None = None
    to: str | None = None
    step_index: int | None = None
    reason: str | None = None
    template_version: int | None = None  # sends: the application's template (None: catalogue)


class VerificationEvents(ApiModel):
    id: str
    data: list[Event]


class AnalyticsFigures(ApiModel):
    day: str | None = None
    channel: str | None = None
    country: str | None = None
    started: int
    delivered: int
    approved: int
    expired: int
    failed: int
    canceled: int
    blocked: int
    pending: int
    conversion_rate: float | None = None
    delivery_rate: float | None = None
    fallback_rate: float | None = None
    wrong_code_rate: float | None = None
    time_to_verify_p50_ms: int | None = None
    time_to_verify_p95_ms: int | None = None


class AnalyticsReport(ApiModel):
    created_after: datetime
    created_before: datetime
    group_by: list[str]
    totals: AnalyticsFigures
    groups: list[AnalyticsFigures]


# ----------------------------------------------------------------- sandbox
class SandboxMessage(ApiModel):
    """What the sandbox provider "delivered" (test keys only): the code is in `body`."""

    message_id: str
    verification_id: str
    channel: str
    to: str
    subject: str
    body: str
    created_at: datetime


class SandboxMessageList(ApiModel):
    messages: list[SandboxMessage]


# -------------------------------------------------------- webhook endpoints
class WebhookEndpoint(ApiModel):
    id: str
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None = None
    mode: str
    created_at: datetime
    updated_at: datetime


class WebhookEndpointCreated(WebhookEndpoint):
    secret: str = Field(description="The `whsec_...` signing secret.")


class WebhookEndpointList(ApiModel):
    endpoints: list[WebhookEndpoint]


class WebhookEndpointSecret(ApiModel):
    secret: str


class WebhookSecretRotated(ApiModel):
    secret: str
    previous_secret_expires_at: datetime | None = None


class WebhookTestSent(ApiModel):
    message_id: str
    event_type: str = WebhookEventType.TEST.value


class WebhookMessage(ApiModel):
    message_id: str
    event_type: str
    verification_id: str | None = None
    status: str
    attempts: int
    last_status_code: int | None = None
    next_attempt_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class WebhookMessageList(ApiModel):
    messages: list[WebhookMessage]


class WebhookAttempt(ApiModel):
    attempt: int
    attempted_at: datetime
    status_code: int | None = None
    error: str | None = None
    duration_ms: int


class WebhookAttemptList(ApiModel):
    attempts: list[WebhookAttempt]


# ------------------------------------------------------------------ problems
class Problem(BaseModel):
    """RFC 9457 problem details (`application/problem+json`); extension members are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str = "about:blank"
    title: str = ""
    status: int = 0
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = None
    status_of_verification: str | None = None
    retry_after: int | None = None

    def extension(self, name: str) -> Any:
        """An extension member the model does not name (None if absent)."""
        return (self.model_extra or {}).get(name)
