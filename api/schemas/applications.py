"""Applications and their API keys (the admin API)."""

from __future__ import annotations

from pydantic import ConfigDict, Field, model_validator

from api.schemas.base import RequestModel, ResponseModel
from otp.applications.model import (
    BRAND_MAX,
    NAME_MAX,
    ApiKeyPublic,
    ApplicationDefaults,
    ApplicationPolicy,
    ApplicationPublic,
)
from otp.domain import Channel, Mode
from otp.risk.policy import RiskSettings


class ApplicationCreate(RequestModel):
    """A new application. Its defaults fill in what verification requests leave out."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Acme web shop",
                    "brand": "Acme",
                    "defaults": {
                        "channels": [
                            {"channel": "sms", "timeout_s": 30},
                            {"channel": "voice", "timeout_s": 60},
                        ],
                        "code_length": 6,
                        "locale": "en",
                    },
                    "allowed_channels": ["sms", "voice", "email"],
                }
            ]
        },
    )

    name: str = Field(min_length=1, max_length=NAME_MAX, description="For people, not shown.")
    brand: str = Field(default="", max_length=BRAND_MAX, description="Name shown in messages.")
    defaults: ApplicationDefaults = Field(default_factory=ApplicationDefaults)
    allowed_channels: list[Channel] = Field(
        default_factory=list, description="Channels the application may use; empty: all."
    )
    risk: RiskSettings = Field(
        default_factory=RiskSettings, description="Fraud controls; left out: the safe defaults."
    )

    @model_validator(mode="after")
    def _consistent(self) -> ApplicationCreate:
        ApplicationPolicy(defaults=self.defaults, allowed_channels=self.allowed_channels)
        return self


class ApplicationUpdate(RequestModel):
    """Fields to change; a field left out keeps its value. `defaults` is replaced whole."""

    name: str | None = Field(default=None, min_length=1, max_length=NAME_MAX)
    brand: str | None = Field(default=None, max_length=BRAND_MAX)
    defaults: ApplicationDefaults | None = None
    allowed_channels: list[Channel] | None = None
    risk: RiskSettings | None = Field(
        default=None, description="Fraud controls, replaced whole (`{}`: the safe defaults)."
    )


class ApplicationList(ResponseModel):
    applications: list[ApplicationPublic] = Field(description="Oldest first.")
    next_after: str | None = Field(
        default=None, description="Pass as `after` for the next page; null on the last one."
    )


class ApiKeyCreate(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"mode": "test", "name": "staging"}]})

    mode: Mode = Field(description="`test` (sandbox, no real delivery) or `live`.")
    name: str = Field(default="", max_length=NAME_MAX, description="For people, e.g. `staging`.")


class ApiKeyCreated(ApiKeyPublic):
    """A new key. `key` is shown this once: only its hash is kept."""

    key: str = Field(examples=["otp_test_3kZ9..."])


class ApiKeyList(ResponseModel):
    keys: list[ApiKeyPublic] = Field(description="Oldest first, revoked ones included.")
