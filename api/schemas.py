"""Request and response models of the HTTP API (the /docs reference is generated from these)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, IPvAnyAddress, field_validator
from pydantic_core import PydanticCustomError

from otp.domain import (
    CODE_LENGTH_MAX,
    CODE_LENGTH_MIN,
    MAX_ATTEMPTS_MAX,
    MAX_PLAN_STEPS,
    STEP_TIMEOUT_DEFAULT_S,
    STEP_TIMEOUT_MAX_S,
    STEP_TIMEOUT_MIN_S,
    TTL_MAX_S,
    TTL_MIN_S,
    Channel,
    CodeType,
    DeliveryKind,
    DeliveryStatus,
    Mode,
    Status,
)
from otp.messages.sms import validate_app_hash
from otp.security.codes import normalize_submitted

# Sends allowed per verification (plan steps + resends); the plan cannot exceed it.
DEFAULT_MAX_SENDS = 5
DEFAULT_RESEND_COOLDOWN_S = 30
MAX_STEPS = min(MAX_PLAN_STEPS, DEFAULT_MAX_SENDS)

VERIFICATION_ID_PATTERN = r"^ver_[a-z0-9]{20,64}$"
VERIFICATION_ID_RE = re.compile(VERIFICATION_ID_PATTERN)
# BCP 47 in the shapes real clients send: language[-Script][-REGION][-variant]*.
LOCALE_PATTERN = (
    r"^[A-Za-z]{2,3}(?:-[A-Za-z]{4})?(?:-(?:[A-Za-z]{2}|[0-9]{3}))?(?:-(?:[A-Za-z0-9]{5,8}))*$"
)
_CODE_RE = re.compile(rf"^[A-Z0-9]{{{CODE_LENGTH_MIN},{CODE_LENGTH_MAX}}}$")

_DESTINATION_DOC = (
    "Phone number in international format (E.164, e.g. `+14155550123`) or email address."
)


class _Request(BaseModel):
    # Unknown fields are rejected: a typo (`chanels`) must not silently fall back to defaults.
    model_config = ConfigDict(extra="forbid")


class ChannelStepCreate(_Request):
    """One step of the channel plan."""

    channel: Channel = Field(description="Delivery channel of this step.", examples=["sms"])
    to: str | None = Field(
        default=None,
        min_length=1,
        max_length=320,
        description=f"Destination for this step; defaults to the top-level `to`. {_DESTINATION_DOC}",
        examples=["+14155550123"],
    )
    timeout_s: int = Field(
        default=STEP_TIMEOUT_DEFAULT_S,
        ge=STEP_TIMEOUT_MIN_S,
        le=STEP_TIMEOUT_MAX_S,
        description="Seconds to wait for a correct check before falling back to the next step.",
        examples=[30],
    )


class VerificationCreate(_Request):
    """Start a verification: a code is issued and delivered along the channel plan."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"to": "+14155550123"},
                {
                    "to": "+14155550123",
                    "channels": [
                        {"channel": "sms", "timeout_s": 30},
                        {"channel": "email", "to": "jane@example.com", "timeout_s": 120},
                    ],
                    "code_length": 6,
                    "ttl_s": 600,
                    "brand": "Acme",
                    "client_ref": "signup-42",
                },
            ]
        },
    )

    to: str = Field(
        min_length=1,
        max_length=320,
        description=f"The user's destination. {_DESTINATION_DOC}",
        examples=["+14155550123"],
    )
    channels: list[ChannelStepCreate] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_STEPS,
        description=(
            "Ordered channel plan. Default: the application's default plan (its steps that "
            "fit `to`), else one step on the channel implied by `to` (`email` if it contains "
            f"`@`, else `sms`). At most {MAX_STEPS} steps."
        ),
    )
    code_length: int = Field(
        default=6,
        ge=CODE_LENGTH_MIN,
        le=CODE_LENGTH_MAX,
        description="Number of characters. Left out: the application's default, else 6.",
    )
    code_type: CodeType = Field(
        default=CodeType.NUMERIC,
        description="`numeric`, or `alphanumeric` (upper case, without look-alike characters). "
        "Left out: the application's default, else `numeric`.",
    )
    ttl_s: int = Field(
        default=600,
        ge=TTL_MIN_S,
        le=TTL_MAX_S,
        description="Seconds until the code expires. Left out: the application's default, "
        "else 600.",
    )
    max_attempts: int = Field(
        default=5,
        ge=1,
        le=MAX_ATTEMPTS_MAX,
        description="Checks allowed before the code is void. Left out: the application's "
        "default, else 5.",
    )
    locale: str = Field(
        default="en",
        max_length=35,
        pattern=LOCALE_PATTERN,
        description="BCP 47 language tag of the message (e.g. `en`, `pt-BR`). Left out: the "
        "application's default, else `en`.",
        examples=["en"],
    )
    brand: str | None = Field(
        default=None,
        max_length=40,
        description="Name shown in the message. Left out: the application's brand.",
        examples=["Acme"],
    )
    client_ref: str | None = Field(
        default=None,
        max_length=128,
        description="Your own reference, returned as is (not personal data, please).",
        examples=["signup-42"],
    )
    user_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="Your id of the end user (opaque; a hash is best): verifications per "
        "user are rate limited. Never stored or logged in clear.",
        examples=["u_8f14e45f"],
    )
    user_ip: IPvAnyAddress | None = Field(
        default=None,
        description="The end user's IP address as your backend saw it: verifications per "
        "IP are rate limited. Never stored or logged in clear.",
        examples=["203.0.113.7"],
    )
    app_hash: str | None = Field(
        default=None,
        description=(
            "Android SMS Retriever app hash (11 characters): added to SMS so your Android "
            "app can read the code without asking for SMS permission."
        ),
        examples=["FA+9qCX9VSu"],
    )

    @field_validator("app_hash")
    @classmethod
    def _check_app_hash(cls, value: str | None) -> str | None:
        return None if value is None else validate_app_hash(value)


class CheckRequest(_Request):
    """A code the user typed."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"code": "123456"}]})

    code: str = Field(
        min_length=1,
        max_length=64,
        description="The code; spaces and dashes are ignored, letters are case-insensitive.",
    )

    @field_validator("code")
    @classmethod
    def _normalise(cls, value: str) -> str:
        code = normalize_submitted(value)
        if not _CODE_RE.match(code):
            # The message never repeats the submitted value.
            raise PydanticCustomError(
                "code_format",
                "the code must be {min} to {max} letters or digits (spaces and dashes are ignored)",
                {"min": CODE_LENGTH_MIN, "max": CODE_LENGTH_MAX},
            )
        return code


# ----------------------------------------------------------------- responses
class ChannelStepPublic(BaseModel):
    channel: Channel
    to: str = Field(description="Masked destination.", examples=["+1********23"])
    timeout_s: int


class VerificationCreated(BaseModel):
    """A verification as it was started."""

    id: str = Field(examples=["ver_k5xwq2m3b7c4d5e6f7g2h3j4kq"])
    status: Status = Field(examples=["pending"])
    mode: Mode
    to: str = Field(description="Masked destination of the first step.", examples=["+1********23"])
    channels: list[ChannelStepPublic]
    code_length: int
    code_type: CodeType
    locale: str
    max_attempts: int
    attempts_remaining: int
    created_at: datetime
    expires_at: datetime
    client_ref: str | None = None


class DeliveryPublic(BaseModel):
    """One delivery of the code (a plan step's send or a resend). No destination."""

    step_index: int = Field(description="Index of the plan step (0-based).")
    kind: DeliveryKind
    channel: Channel
    provider: str | None = None
    status: DeliveryStatus
    error_type: str | None = Field(
        default=None, description="Why the delivery failed (machine code), if it did."
    )
    started_at: datetime
    updated_at: datetime


class VerificationPublic(BaseModel):
    """A verification now."""

    id: str
    status: Status
    reason: str | None = Field(default=None, description="Why it finished, once it has.")
    mode: Mode
    to: str = Field(description="Masked destination of the first step.")
    channels: list[ChannelStepPublic]
    current_step: int = Field(description="Index of the plan step in use (0-based).")
    deliveries: list[DeliveryPublic]
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


class CheckResponse(BaseModel):
    id: str
    status: Status = Field(
        description="`approved` when the code was right; `pending` while checks remain; "
        "`max_attempts_reached` when this wrong code was the last allowed one."
    )
    valid: bool
    attempts_remaining: int


class ResendResponse(BaseModel):
    id: str
    delivery: DeliveryPublic
    sends_remaining: int
    next_resend_at: datetime = Field(description="Earliest time of the next resend.")


class NextChannelResponse(BaseModel):
    id: str
    step_index: int = Field(description="The plan step now in use (0-based).")
    delivery: DeliveryPublic = Field(
        description="The delivery on that step. A failed delivery still moves the plan on: "
        "the verification falls back to any further step by itself."
    )


class CancelResponse(BaseModel):
    id: str
    status: Status = Field(examples=["canceled"])


class SandboxMessagePublic(BaseModel):
    """A message the sandbox provider 'delivered' (test mode only): code included."""

    message_id: str
    verification_id: str
    channel: Channel
    to: str = Field(description="The full destination (this is the simulated phone/mailbox).")
    subject: str
    body: str
    created_at: datetime


class SandboxMessageList(BaseModel):
    messages: list[SandboxMessagePublic] = Field(description="Newest first.")


class HealthStatus(BaseModel):
    status: str = Field(examples=["ok"])


class ReadinessStatus(BaseModel):
    status: str = Field(examples=["ok"])
    checks: dict[str, str] = Field(examples=[{"temporal": "ok", "store": "ok"}])


class WebhookAck(BaseModel):
    """How much of a provider's webhook delivery reached a verification."""

    statuses: int = Field(description="Message statuses the delivery carried.", examples=[1])
    forwarded: int = Field(
        description="Statuses forwarded to a running verification (the others could not be "
        "mapped to one, or it had already finished).",
        examples=[1],
    )


class Problem(BaseModel):
    """RFC 9457 problem details (`application/problem+json`)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["urn:otp:problem:verification-not-found"])
    title: str = Field(examples=["Verification not found"])
    status: int = Field(examples=[404])
    detail: str | None = None
    instance: str | None = Field(default=None, examples=["/v1/verifications/ver_..."])
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = Field(
        default=None,
        description="Validation problems: `pointer` (JSON pointer into the body) or "
        "`in` + `parameter`, with `detail` and `type`.",
    )
    status_of_verification: Status | None = Field(
        default=None, description="Terminal status of a finished verification (409)."
    )
    retry_after: int | None = Field(default=None, description="Seconds to wait (429, 503).")


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the problems a route can answer."""
    descriptions = {
        401: "Missing or invalid API key",
        403: "Not allowed for this key's mode",
        404: "Unknown verification",
        409: "The verification is finished (or has no further channel)",
        422: "Invalid request",
        429: "Too many sends (see Retry-After)",
        502: "Delivery or engine failure",
        503: "Temporal unavailable (see Retry-After)",
    }
    return {
        status: {
            "model": Problem,
            "description": descriptions.get(status, "Problem"),
        }
        for status in statuses
    }


# --- search, event log, analytics ---
class VerificationSummary(BaseModel):
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


class VerificationPage(BaseModel):
    data: list[VerificationSummary]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; absent on the last."
    )


class EventPublic(BaseModel):
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


class VerificationEvents(BaseModel):
    id: str
    data: list[EventPublic]


class AnalyticsFigures(BaseModel):
    day: str | None = None
    channel: str | None = None
    country: str | None = None
    started: int
    delivered: int
    approved: int
    expired: int
    failed: int = Field(description="Undeliverable or out of attempts.")
    canceled: int
    blocked: int
    pending: int
    conversion_rate: float | None = Field(description="approved / started.")
    delivery_rate: float | None = Field(description="delivered / started.")
    fallback_rate: float | None = Field(description="Share of verifications that fell back.")
    wrong_code_rate: float | None = Field(description="Wrong checks / all checks.")
    time_to_verify_p50_ms: int | None = None
    time_to_verify_p95_ms: int | None = None


class AnalyticsReport(BaseModel):
    created_after: datetime
    created_before: datetime
    group_by: list[str]
    totals: AnalyticsFigures
    groups: list[AnalyticsFigures]
