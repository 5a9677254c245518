"""Alert rules and alerts as the admin API reads and writes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from api.schemas.base import ResponseModel
from otp.store.tables import AlertRecord


class AlertPublic(ResponseModel):
    """One alert episode: raised once, resolved once, with the figures of each moment."""

    id: str
    mode: str
    rule: str = Field(description="The rule that raised it (`conversion`, `spend`, ...).")
    scope: str = Field(description="What it is about: `all`, a country, a provider, a cap.")
    state: str = Field(description="`firing` or `resolved`.")
    started_at: datetime
    resolved_at: datetime | None = None
    evidence: dict[str, Any] = Field(description="The figures and window that raised it.")
    resolved_evidence: dict[str, Any] | None = Field(
        default=None, description="The figures when it resolved."
    )
    deliveries: dict[str, Any] = Field(
        description="What each notification reached: webhooks started and emails sent."
    )

    @classmethod
    def of(cls, row: AlertRecord) -> AlertPublic:
        return cls(
            id=row.id,
            mode=row.mode,
            rule=row.rule,
            scope=row.scope,
            state=row.state,
            started_at=row.started_at,
            resolved_at=row.resolved_at,
            evidence=row.evidence,
            resolved_evidence=row.resolved_evidence,
            deliveries=row.deliveries,
        )


class AlertList(ResponseModel):
    alerts: list[AlertPublic]
