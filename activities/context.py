"""Every log line an activity writes names its verification and application."""

from __future__ import annotations

from typing import Any

from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from otp.observability.logs import log_context


class _Inbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        first = input.args[0] if input.args else None
        with log_context(
            verification_id=getattr(first, "verification_id", None) or info.workflow_id,
            application_id=getattr(first, "application_id", None)
            or getattr(getattr(first, "state", None), "application_id", None),
            activity=info.activity_type,
            attempt=info.attempt,
        ):
            return await super().execute_activity(input)


class LogContextInterceptor(Interceptor):
    """Binds the log context of each activity run (see otp.observability.logs)."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Inbound(next)
