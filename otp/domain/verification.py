"""Types of VerificationWorkflow: its start input, updates, queries and state."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import Field, computed_field

from otp.domain.base import PayloadModel
from otp.domain.constants import STEP_TIMEOUT_DEFAULT_S, STEP_TIMEOUT_MAX_S, STEP_TIMEOUT_MIN_S
from otp.domain.delivery import DeliveryAttempt
from otp.domain.enums import Channel, CodeType, Mode, Status
from otp.domain.routing import Sender


class ChannelStep(PayloadModel):
    """One step of a channel plan: where to deliver and how long to wait before falling back."""

    channel: Channel
    to: str
    timeout_s: int = Field(
        default=STEP_TIMEOUT_DEFAULT_S, ge=STEP_TIMEOUT_MIN_S, le=STEP_TIMEOUT_MAX_S
    )
    # Live mode: providers in failover order (empty: the channel's default; test: sandbox).
    providers: list[str] = Field(default_factory=list)
    # Live mode: the application's routing rule that chose `providers`, and its sender
    # (None: the global order and each provider's configured sender).
    rule_id: str | None = None
    sender: Sender | None = None


class VerificationInput(PayloadModel):
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
    # The most the verification may cost, in micros of the deployment's currency: a
    # step or resend whose estimate would pass it is skipped. None: no cap.
    cost_cap_micros: int | None = None
    # What the API charged to the spend caps for the first send at create (its estimate).
    precharged_micros: int = 0


class CheckInput(PayloadModel):
    """A submitted code, as its keyed digest, plus the caller's scope."""

    digest: str
    application_id: str
    mode: Mode


class CheckResult(PayloadModel):
    status: Status
    valid: bool
    attempts_remaining: int
    attempts_used: int = 0  # this check's number: the key of its event in the log


class ScopedInput(PayloadModel):
    """Input of updates that only need the caller's scope (resend, next channel, cancel)."""

    application_id: str
    mode: Mode


class ResendResult(PayloadModel):
    delivery: DeliveryAttempt
    sends_remaining: int
    next_resend_at: datetime


class NextChannelResult(PayloadModel):
    step_index: int
    delivery: DeliveryAttempt


class CancelResult(PayloadModel):
    status: Status


class StateQueryInput(PayloadModel):
    pass


class VerificationState(PayloadModel):
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
