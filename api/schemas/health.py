"""Liveness and readiness answers."""

from __future__ import annotations

from pydantic import Field

from api.schemas.base import ResponseModel


class HealthStatus(ResponseModel):
    status: str = Field(examples=["ok"])


class ReadinessStatus(ResponseModel):
    status: str = Field(examples=["ok"])
    checks: dict[str, str] = Field(examples=[{"temporal": "ok", "store": "ok"}])
