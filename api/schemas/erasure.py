"""Export and erasure of everything held about one destination (the admin API)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from api.schemas.base import RequestModel, ResponseModel
from otp.domain import Mode


class DestinationRequest(RequestModel):
    to: Annotated[str, Field(min_length=1, max_length=320)] = Field(
        description="The phone number (E.164, `+14155550123`) or email address."
    )
    mode: Mode | None = Field(default=None, description="`live`, `test`, or null: both.")


class ExecutionPublic(ResponseModel):
    workflow_id: str
    kind: str = Field(description="`verification` or `webhook_delivery`.")
    status: str | None = Field(description="As Temporal described it before any deletion.")


class DestinationReport(ResponseModel):
    application_id: str
    to: str = Field(description="The destination, masked.")
    modes: list[str]
    verification_ids: list[str]
    tables: dict[str, int] = Field(description="Rows found (export) or erased, per table.")
    executions: list[ExecutionPublic] = Field(description="Temporal executions found.")
    executions_deleted: list[str] = Field(default_factory=list)
    rows: dict[str, list[dict[str, Any]]] | None = Field(
        default=None, description="Export only: every row, per table."
    )
