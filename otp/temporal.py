"""Temporal client construction: one client per process, always with the shared converter."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.runtime import Runtime

from otp.observability import tracing
from otp.security.codec import data_converter
from otp.settings import Secrets, Settings


async def connect(
    settings: Settings, secrets: Secrets, *, runtime: Runtime | None = None
) -> Client:
    """Connect with the shared converter, tracing when on (OTP_TRACING), and `runtime` (the
    worker's, serving metrics) if given; workers built on this client inherit both."""
    return await Client.connect(
        settings.temporal_target,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(secrets),
        interceptors=tracing.client_interceptors(settings),
        runtime=runtime,
    )
