"""Applications: per-application request defaults, allowed channels, id and key formats.

An application owns API keys (test and live) and the defaults that fill in whatever a
`POST /v1/verifications` leaves out. Keys are `otp_test_` / `otp_live_` + 43 base62
characters (32 random bytes); only their SHA-256 is stored, with a hint (prefix + last
four characters) to recognise them in a list.
"""

from __future__ import annotations

import base64
import re
import secrets
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
)
from otp.messages.sms import validate_web_domain
from otp.risk.policy import RiskSettings

DEFAULT_APPLICATION_ID = "default"
APPLICATION_ID_RE = re.compile(r"^(?:default|app_[a-z2-7]{26})$")
KEY_ID_RE = re.compile(r"^key_[a-z2-7]{26}$")
# A default plan runs within the API's default send budget (plan steps + resends).
MAX_DEFAULT_PLAN_STEPS = 5
NAME_MAX = 120
BRAND_MAX = 40
LOCALE_PATTERN = (
    r"^[A-Za-z]{2,3}(?:-[A-Za-z]{4})?(?:-(?:[A-Za-z]{2}|[0-9]{3}))?(?:-(?:[A-Za-z0-9]{5,8}))*$"
)

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_KEY_BYTES = 32
_KEY_BODY_LEN = 43  # 62**43 > 2**256
KEY_HINT_TAIL = 4


# ------------------------------------------------------------------------ ids and keys
def _random_id(prefix: str) -> str:
    """`prefix` + 26 lowercase base32 characters of 128 random bits."""
    return prefix + base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=").lower()


def new_application_id() -> str:
    return _random_id("app_")


def new_key_id() -> str:
    return _random_id("key_")


def key_prefix(mode: Mode) -> str:
    return f"otp_{mode.value}_"


def new_api_key(mode: Mode) -> str:
    """A new key: `otp_<mode>_` + 32 random bytes in base62 (43 characters)."""
    number = int.from_bytes(secrets.token_bytes(_KEY_BYTES), "big")
    digits = []
    for _ in range(_KEY_BODY_LEN):
        number, digit = divmod(number, 62)
        digits.append(_BASE62[digit])
    return key_prefix(mode) + "".join(reversed(digits))


def key_hint(key: str) -> str:
    """What a list shows of a key: its prefix and last four characters."""
    for mode in Mode:
        prefix = key_prefix(mode)
        if key.startswith(prefix):
            return f"{prefix}…{key[-KEY_HINT_TAIL:]}"
    return f"…{key[-KEY_HINT_TAIL:]}"


# ---------------------------------------------------------------------- settings model
class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DefaultPlanStep(_Model):
    """One step of an application's default channel plan (the destination is the request's)."""

    channel: Channel
    timeout_s: int = Field(
        default=STEP_TIMEOUT_DEFAULT_S, ge=STEP_TIMEOUT_MIN_S, le=STEP_TIMEOUT_MAX_S
    )


class ApplicationDefaults(_Model):
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


class ApplicationPolicy(_Model):
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
