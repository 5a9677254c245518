"""Lockouts after too many wrong codes, and the safe list (the admin API)."""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field, field_validator

from api.schemas.base import RequestModel, ResponseModel
from otp.domain import Mode
from otp.store import safe_list as store_safe_list
from otp.store.tables import Lockout, SafeListEntry


class LockoutPublic(ResponseModel):
    """A destination refused after too many wrong codes."""

    id: str | None = Field(
        description="`lck_...`; null for a counter at the cap with no lockout recorded."
    )
    mode: Mode
    to: str = Field(description="Masked, e.g. `+1415*****23`.")
    channel: str | None = None
    failed_count: int
    since: datetime | None = None
    until: datetime | None = Field(default=None, description="When it ends on its own.")

    @classmethod
    def of(cls, row: Lockout) -> LockoutPublic:
        return cls(
            id=row.id,
            mode=Mode(row.mode),
            to=row.to_masked,
            channel=row.channel,
            failed_count=row.failed_count,
            since=row.since,
            until=row.until,
        )


class LockoutList(ResponseModel):
    lockouts: list[LockoutPublic] = Field(description="Lockouts in force, by id.")
    next_after: str | None = Field(
        default=None, description="Pass as `after` for the next page; null on the last one."
    )


class UnlockRequest(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"to": "+14155550123"}]})

    to: str = Field(min_length=3, max_length=320, description="E.164 number or email address.")
    mode: Mode | None = Field(default=None, description="Only this mode; null: test and live.")


class Unlocked(ResponseModel):
    to: str = Field(description="Masked.")
    lifted: list[LockoutPublic] = Field(description="What was lifted, per mode.")


class SafeListAdd(RequestModel):
    """A destination exempt from velocity limits and conversion blocks."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"to": "+14155550123", "mode": "live", "note": "QA handset"}]
        },
    )

    to: str = Field(min_length=3, max_length=320, description="E.164 number or email address.")
    mode: Mode
    note: str = Field(default="", max_length=store_safe_list.NOTE_MAX)
    added_by: str | None = Field(
        default=None,
        max_length=store_safe_list.ACTOR_MAX,
        description="Who adds it; default the `X-Operator` header, else `admin`.",
    )

    @field_validator("note")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()


class SafeListEntryPublic(ResponseModel):
    id: str = Field(examples=["sfl_k5xwq2m3b7c4d5e6f7g2h3j4"])
    application_id: str
    mode: Mode
    to: str = Field(description="Masked.")
    note: str
    added_by: str
    added_at: datetime
    removed_at: datetime | None = None
    removed_by: str | None = None
    active: bool

    @classmethod
    def of(cls, row: SafeListEntry) -> SafeListEntryPublic:
        return cls(
            id=row.id,
            application_id=row.application_id,
            mode=Mode(row.mode),
            to=row.to_masked,
            note=row.note,
            added_by=row.added_by,
            added_at=row.added_at,
            removed_at=row.removed_at,
            removed_by=row.removed_by,
            active=row.removed_at is None,
        )


class SafeList(ResponseModel):
    entries: list[SafeListEntryPublic] = Field(description="By id.")
    next_after: str | None = Field(
        default=None, description="Pass as `after` for the next page; null on the last one."
    )
