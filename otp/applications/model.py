"""Applications: per-application request defaults and allowed channels.

An application owns API keys (test and live; their formats are in otp.applications.keys)
and the defaults that fill in whatever a `POST /v1/verifications` leaves out.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, field_validator, model_validator

from otp.domain import (
    CODE_LENGTH_MAX,
    CODE_LENGTH_MIN,
    MAX_ATTEMPTS_MAX,
    STEP_TIMEOUT_DEFAULT_S,
    STEP_TIMEOUT_MAX_S,
    STEP_TIMEOUT_MIN_S,
    TTL_MAX_S,
    TTL_MIN_S,
    Channel,
    CodeType,
    Mode,
    StrictModel,
)
from otp.messages.sms import validate_web_domain
from otp.risk.policy import RiskSettings

DEFAULT_APPLICATION_ID = "default"
# A default plan runs within the API's default send budget (plan steps + resends).
MAX_DEFAULT_PLAN_STEPS = 5
NAME_MAX = 120
BRAND_MAX = 40
LOCALE_PATTERN = (
    r"^[A-Za-z]{2,3}(?:-[A-Za-z]{4})?(?:-(?:[A-Za-z]{2}|[0-9]{3}))?(?:-(?:[A-Za-z0-9]{5,8}))*$"
)


# ---------------------------------------------------------------------- settings model
class DefaultPlanStep(StrictModel):
    """One step of an application's default channel plan (the destination is the request's)."""

    channel: Channel
    timeout_s: int = Field(
        default=STEP_TIMEOUT_DEFAULT_S, ge=STEP_TIMEOUT_MIN_S, le=STEP_TIMEOUT_MAX_S
    )


class ApplicationDefaults(StrictModel):
    """Values used when a verification request leaves the field out (unset: the API's own)."""

    channels: list[DefaultPlanStep] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_DEFAULT_PLAN_STEPS,
        description="Default channel plan. A request without `channels` uses the steps that fit "
        "its `to` (phone channels for a number, email for an address).",
    )
    code_length: int | None = Field(default=None, ge=CODE_LENGTH_MIN, le=CODE_LENGTH_MAX)
    code_type: CodeType | None = None
    ttl_s: int | None = Field(default=None, ge=TTL_MIN_S, le=TTL_MAX_S)
    max_attempts: int | None = Field(default=None, ge=1, le=MAX_ATTEMPTS_MAX)
    locale: str | None = Field(default=None, max_length=35, pattern=LOCALE_PATTERN)
    web_domain: str | None = Field(
        default=None, description="Domain of the WebOTP line (`@domain #code`) added to SMS."
    )

    @field_validator("web_domain")
    @classmethod
    def _check_web_domain(cls, value: str | None) -> str | None:
        return None if not value else validate_web_domain(value)

    def plan_for(self, *, email: bool) -> list[DefaultPlanStep]:
        """The default plan's steps that can reach a destination of this kind."""
        return [s for s in self.channels or [] if (s.channel is Channel.EMAIL) == email]


Defaults = ApplicationDefaults


class ApplicationPolicy(StrictModel):
    """An application's defaults and allowed channels, checked against each other."""

    defaults: ApplicationDefaults = Field(default_factory=ApplicationDefaults)
    allowed_channels: list[Channel] = Field(
        default_factory=list, description="Channels the application may use; empty: all."
    )

    @field_validator("allowed_channels")
    @classmethod
    def _dedupe(cls, value: list[Channel]) -> list[Channel]:
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _plan_uses_allowed_channels(self) -> ApplicationPolicy:
        if self.allowed_channels and self.defaults.channels:
            refused = [
                s.channel.value
                for s in self.defaults.channels
                if s.channel not in self.allowed_channels
            ]
            if refused:
                raise ValueError(
                    "the default plan uses channels the application may not use: "
                    + ", ".join(refused)
                )
        return self


def allows(allowed_channels: list[Channel] | frozenset[Channel], channel: Channel) -> bool:
    """Whether an application with these allowed channels may use `channel` (empty: all)."""
    return not allowed_channels or channel in allowed_channels


# ----------------------------------------------------------------------- public views
class ApplicationPublic(BaseModel):
    """An application as the admin API and the CLI show it."""

    id: str
    name: str
    brand: str
    defaults: ApplicationDefaults
    allowed_channels: list[Channel]
    risk: RiskSettings = Field(
        default_factory=RiskSettings,
        description="Fraud controls (see otp.risk.policy.RiskSettings).",
    )
    created_at: datetime
    updated_at: datetime


class ApiKeyPublic(BaseModel):
    """An API key as lists show it: never the key, never its hash."""

    id: str
    application_id: str
    mode: Mode
    name: str
    hint: str = Field(description="Prefix and last four characters of the key.")
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class NewApiKey(BaseModel):
    """A key just created: the only time the key itself is available."""

    key: str
    api_key: ApiKeyPublic
