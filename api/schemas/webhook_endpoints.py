"""Webhook endpoints: where an application receives its verification events."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from api.schemas.base import RequestModel, ResponseModel
from otp.domain import Mode, WebhookEventType
from otp.store import WebhookAttempt, WebhookEndpoint, WebhookMessage
from otp.webhooks.models import TEST_EVENT_TYPE


class WebhookEndpointCreate(RequestModel):
    url: str = Field(min_length=8, max_length=2048, examples=["https://example.com/hooks/otp"])
    description: str = Field(default="", max_length=300)
    event_types: list[WebhookEventType] = Field(
        default_factory=list,
        max_length=32,
        description="Event types to receive; empty: every event type.",
    )


class WebhookEndpointUpdate(RequestModel):
    url: str | None = Field(default=None, min_length=8, max_length=2048)
    description: str | None = Field(default=None, max_length=300)
    event_types: list[WebhookEventType] | None = Field(default=None, max_length=32)
    enabled: bool | None = None


class WebhookEndpointPublic(ResponseModel):
    id: str
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None = None
    mode: Mode
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: WebhookEndpoint) -> WebhookEndpointPublic:
        return cls(
            id=row.id,
            url=row.url,
            description=row.description,
            event_types=list(row.event_types),
            enabled=row.enabled,
            disabled_reason=row.disabled_reason,
            mode=Mode(row.mode),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class WebhookEndpointCreated(WebhookEndpointPublic):
    secret: str = Field(description="The `whsec_...` signing secret.")


class WebhookEndpointList(ResponseModel):
    endpoints: list[WebhookEndpointPublic]


class WebhookEndpointSecret(ResponseModel):
    secret: str


DEFAULT_GRACE_PERIOD_S = 86_400
MAX_GRACE_PERIOD_S = 7 * 86_400


class WebhookSecretRotate(RequestModel):
    grace_period_s: int = Field(
        default=DEFAULT_GRACE_PERIOD_S,
        ge=0,
        le=MAX_GRACE_PERIOD_S,
        description="How long the old secret keeps signing beside the new one (0: not at all).",
    )


class WebhookSecretRotated(ResponseModel):
    secret: str = Field(description="The new `whsec_...` signing secret.")
    previous_secret_expires_at: datetime | None = Field(
        description="Until when the old secret also signs (null: it stopped at once)."
    )


class WebhookTestSent(ResponseModel):
    message_id: str
    event_type: str = TEST_EVENT_TYPE


class WebhookMessagePublic(ResponseModel):
    message_id: str
    event_type: str
    verification_id: str | None = None
    status: str
    attempts: int
    last_status_code: int | None = None
    next_attempt_at: datetime | None = None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: WebhookMessage) -> WebhookMessagePublic:
        return cls(
            message_id=row.message_id,
            event_type=row.event_type,
            verification_id=row.verification_id,
            status=row.status,
            attempts=row.attempts,
            last_status_code=row.last_status_code,
            next_attempt_at=row.next_attempt_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class WebhookMessageList(ResponseModel):
    messages: list[WebhookMessagePublic]


class WebhookAttemptPublic(ResponseModel):
    attempt: int
    attempted_at: datetime
    status_code: int | None = None
    error: str | None = None
    duration_ms: int

    @classmethod
    def of(cls, row: WebhookAttempt) -> WebhookAttemptPublic:
        return cls(
            attempt=row.attempt,
            attempted_at=row.attempted_at,
            status_code=row.status_code,
            error=row.error,
            duration_ms=row.duration_ms,
        )


class WebhookAttemptList(ResponseModel):
    attempts: list[WebhookAttemptPublic]
