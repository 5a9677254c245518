"""Risk blocks: countries or number prefixes refused for one application and mode."""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field, field_validator, model_validator

from api.schemas.base import RequestModel, ResponseModel
from otp.domain import Mode
from otp.store import risk_blocks
from otp.store.tables import RiskBlock


class RiskBlockPublic(ResponseModel):
    """A country or number prefix refused for one application and mode."""

    id: str = Field(examples=["blk_k5xwq2m3b7c4d5e6f7g2h3j4"])
    application_id: str
    mode: Mode
    scope: risk_blocks.BlockScope = Field(description="`country` or `prefix`.")
    value: str = Field(
        description="`US`, or a number prefix such as `+1415555`; an automatic block shows "
        "only a short range (`+1415`) and matches the blocked range by its keyed hash."
    )
    reason: str
    automatic: bool = Field(description="Made by conversion monitoring (else by an operator).")
    level: int = Field(description="The how-manieth automatic block of this scope (escalation).")
    created_at: datetime
    expires_at: datetime | None = Field(description="Null: until lifted.")
    lifted_at: datetime | None = None
    lifted_by: str | None = None
    active: bool

    @classmethod
    def of(cls, block: RiskBlock) -> RiskBlockPublic:
        return cls.model_validate({**block.model_dump(), "active": risk_blocks.is_active(block)})


class RiskBlockList(ResponseModel):
    blocks: list[RiskBlockPublic] = Field(description="Newest first.")


class RiskBlockCreate(RequestModel):
    """A manual block: new verifications to it end `blocked` before any send."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "mode": "live",
                    "scope": "prefix",
                    "value": "+1415555",
                    "reason": "SMS pumping from this range",
                    "duration_s": 86400,
                }
            ]
        },
    )

    mode: Mode
    scope: risk_blocks.BlockScope
    value: str = Field(max_length=20, description="`US`, or `+` and 4 to 14 digits.")
    reason: str = Field(default="blocked by an operator", min_length=1, max_length=200)
    duration_s: int | None = Field(
        default=None, ge=60, le=366 * 86400, description="Null: until lifted."
    )

    @model_validator(mode="after")
    def _value(self) -> RiskBlockCreate:
        self.value = risk_blocks.normalize_value(self.scope, self.value)
        return self


class RiskBlockLift(RequestModel):
    lifted_by: str = Field(default="admin", min_length=1, max_length=120, description="Who.")

    @field_validator("lifted_by")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip() or "admin"
