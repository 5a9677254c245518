"""Sandbox scenarios: failures test mode simulates for one application."""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field, field_validator

from api.schemas.base import RequestModel, ResponseModel
from otp.domain import Channel
from otp.sandbox.scenarios import MAX_DELAY_S, ScenarioKind
from otp.store.tables import SandboxScenarioRow


class SandboxScenarioCreate(RequestModel):
    """What goes wrong, and for which test destination, country or number prefix."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"kind": "provider_error", "to": "+447700900123", "error_code": "21211"},
                {"kind": "provider_down", "country": "GB", "channel": "sms"},
                {"kind": "no_receipt", "prefix": "+3361"},
                {"kind": "webhook_failure", "status_code": 503},
            ]
        },
    )

    kind: ScenarioKind = Field(
        description="`provider_error`, `delay`, `delivered_then_failed`, `no_receipt`, "
        "`fraud_block`, `provider_down` or `webhook_failure`."
    )
    to: str | None = Field(
        default=None, max_length=320, description="An exact test destination (E.164 or email)."
    )
    country: str | None = Field(
        default=None, max_length=2, description="ISO 3166-1 alpha-2, e.g. `GB`."
    )
    prefix: str | None = Field(
        default=None, max_length=20, description="A number prefix, `+` and digits."
    )
    channel: Channel | None = Field(default=None, description="Only this channel (null: any).")
    error_code: str | None = Field(
        default=None,
        max_length=8,
        description="The provider's error code (`provider_error`; the failed receipt's code "
        "for `delivered_then_failed`, default 30003).",
    )
    delay_s: int | None = Field(
        default=None,
        ge=0,
        le=MAX_DELAY_S,
        description="`delay`: seconds before delivery; `delivered_then_failed`: seconds "
        "between delivery and the failed receipt (default 1).",
    )
    status_code: int | None = Field(
        default=None, ge=400, le=599, description="`webhook_failure`: the answer simulated."
    )
    note: str = Field(default="", max_length=200)

    @field_validator("country")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return value.strip().upper() if value is not None else None

    @field_validator("prefix")
    @classmethod
    def _digits(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return "".join(c for c in value if c not in " -()")


class SandboxScenarioPublic(ResponseModel):
    id: str = Field(examples=["sbs_k5xwq2m3b7c4d5e6f7g2h3j4"])
    application_id: str
    kind: ScenarioKind
    to: str | None = Field(
        default=None, description="The exact test destination, masked (kept as a keyed hash)."
    )
    country: str | None = None
    prefix: str | None = None
    channel: Channel | None = None
    error_code: str | None = None
    delay_s: int | None = None
    status_code: int | None = None
    note: str = ""
    created_at: datetime

    @classmethod
    def of(cls, row: SandboxScenarioRow) -> SandboxScenarioPublic:
        return cls.model_validate({**row.model_dump(), "to": row.to_masked})


class SandboxScenarioList(ResponseModel):
    scenarios: list[SandboxScenarioPublic] = Field(description="Newest first.")
