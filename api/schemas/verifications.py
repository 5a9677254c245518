"""Verifications: start, check, read, resend, next channel, cancel (requests and answers)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from pydantic import ConfigDict, Field, IPvAnyAddress, field_validator
from pydantic_core import PydanticCustomError

from api.schemas.base import RequestModel, ResponseModel
from api.schemas.routing import SenderPublic
from otp.cost.money import format_amount
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
    ChannelStep,
    CodeType,
    DeliveryAttempt,
    DeliveryCost,
    DeliveryKind,
    DeliveryStatus,
    Mode,
    PriceSource,
    Status,
    VerificationInput,
    VerificationState,
)
from otp.domain.destinations import mask
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


class ChannelStepCreate(RequestModel):
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


class VerificationCreate(RequestModel):
    """Start a verification: a code is issued and delivered along the channel plan."""

    model_config = ConfigDict(
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
    max_cost: str | None = Field(
        default=None,
        pattern=r"^[0-9]{1,10}(\.[0-9]{1,6})?$",
        description="The most this verification may cost, in the service's currency (a "
        'decimal string, e.g. `"0.05"`): a fallback step or resend whose estimate would '
        "take it past this is skipped. Left out: the application's `spend_caps."
        "per_verification`, else no cap.",
        examples=["0.05"],
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


class CheckRequest(RequestModel):
    """A code the user typed."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"code": "123456"}]})

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


class ChannelStepPublic(ResponseModel):
    channel: Channel
    to: str = Field(description="Masked destination.", examples=["+1********23"])
    timeout_s: int

    @classmethod
    def of_plan(cls, steps: list[ChannelStep]) -> list[ChannelStepPublic]:
        return [cls(channel=s.channel, to=mask(s.to), timeout_s=s.timeout_s) for s in steps]


class VerificationCreated(ResponseModel):
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

    @classmethod
    def of(cls, verification_id: str, input: VerificationInput) -> VerificationCreated:
        created_at = input.created_at or datetime.now(UTC)
        return cls(
            id=verification_id,
            status=Status.PENDING,
            mode=input.mode,
            to=mask(input.channels[0].to),
            channels=ChannelStepPublic.of_plan(input.channels),
            code_length=input.code_length,
            code_type=input.code_type,
            locale=input.locale,
            max_attempts=input.max_attempts,
            attempts_remaining=input.max_attempts,
            created_at=created_at,
            expires_at=created_at + timedelta(seconds=input.ttl_s),
            client_ref=input.client_ref,
        )


class CostPublic(ResponseModel):
    """What one delivery costs, in the service's currency (decimal strings)."""

    amount: str = Field(
        description="What counts: the provider's price once known, else the estimate."
    )
    currency: str = Field(examples=["USD"])
    estimate: str = Field(description="The price table's estimate when it was sent.")
    reported: str | None = Field(
        default=None, description="The price the provider reported (receipt or fetch)."
    )
    reported_currency: str | None = None
    source: PriceSource = Field(
        description="Where the estimate came from: `table`, `default` (the provider's default "
        "price: the table has no row for the country; flagged), `override` (the "
        "application's own price) or `free`."
    )
    units: int = Field(description="SMS segments, messages or call minutes counted.")
    unit: str = Field(examples=["segment"])

    @classmethod
    def of(cls, cost: DeliveryCost) -> CostPublic:
        return cls(
            amount=format_amount(cost.amount_micros),
            currency=cost.currency,
            estimate=format_amount(cost.estimate_micros),
            reported=None if cost.reported_micros is None else format_amount(cost.reported_micros),
            reported_currency=cost.reported_currency,
            source=cost.source,
            units=cost.units,
            unit=cost.unit,
        )


class DeliveryPublic(ResponseModel):
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
    rule_id: str | None = Field(
        default=None, description="The application's routing rule that chose the provider."
    )
    sender: SenderPublic | None = Field(
        default=None, description="The sender the rule picked (none: the provider's own)."
    )
    template_version: int | None = Field(
        default=None,
        description="The application's message template version sent (null: the built-in "
        "catalogue).",
    )
    cost: CostPublic | None = Field(
        default=None, description="What it costs (null: nothing was sent, or not costed)."
    )

    @classmethod
    def of(cls, attempt: DeliveryAttempt) -> DeliveryPublic:
        return cls(
            step_index=attempt.step_index,
            kind=attempt.kind,
            channel=attempt.channel,
            provider=attempt.provider,
            status=attempt.status,
            error_type=attempt.error_type,
            started_at=attempt.started_at,
            updated_at=attempt.updated_at,
            rule_id=attempt.rule_id,
            sender=SenderPublic(type=attempt.sender.type, value=attempt.sender.value)
            if attempt.sender
            else None,
            template_version=attempt.template_version,
            cost=CostPublic.of(attempt.cost) if attempt.cost else None,
        )


class VerificationPublic(ResponseModel):
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
    cost: str | None = Field(
        default=None,
        description="The verification's total cost so far (every delivery's amount), null "
        "when none was costed.",
        examples=["0.0083"],
    )
    currency: str | None = Field(default=None, examples=["USD"])

    @classmethod
    def of(cls, verification_id: str, state: VerificationState) -> VerificationPublic:
        costs = [d.cost for d in state.deliveries if d.cost is not None]
        return cls(
            id=verification_id,
            status=state.status,
            reason=state.reason,
            mode=state.mode,
            to=mask(state.channels[0].to) if state.channels else "",
            channels=ChannelStepPublic.of_plan(state.channels),
            current_step=state.current_step,
            deliveries=[DeliveryPublic.of(d) for d in state.deliveries],
            attempts_used=state.attempts_used,
            attempts_remaining=state.attempts_remaining,
            max_attempts=state.max_attempts,
            sends=state.sends,
            max_sends=state.max_sends,
            next_resend_at=state.next_resend_at,
            created_at=state.created_at,
            expires_at=state.expires_at,
            finished_at=state.finished_at,
            client_ref=state.client_ref,
            locale=state.locale,
            cost=format_amount(sum(c.amount_micros for c in costs)) if costs else None,
            currency=costs[0].currency if costs else None,
        )


class CheckResponse(ResponseModel):
    id: str
    status: Status = Field(
        description="`approved` when the code was right; `pending` while checks remain; "
        "`max_attempts_reached` when this wrong code was the last allowed one."
    )
    valid: bool
    attempts_remaining: int


class ResendResponse(ResponseModel):
    id: str
    delivery: DeliveryPublic
    sends_remaining: int
    next_resend_at: datetime = Field(description="Earliest time of the next resend.")


class NextChannelResponse(ResponseModel):
    id: str
    step_index: int = Field(description="The plan step now in use (0-based).")
    delivery: DeliveryPublic = Field(
        description="The delivery on that step. A failed delivery still moves the plan on: "
        "the verification falls back to any further step by itself."
    )


class CancelResponse(ResponseModel):
    id: str
    status: Status = Field(examples=["canceled"])
