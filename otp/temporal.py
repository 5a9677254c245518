"""Temporal client construction: one client per process, always with the shared converter."""

from __future__ import annotations

from temporalio.client import Client

from otp.codec import data_converter
from otp.settings import Secrets, Settings


async def connect(settings: Settings, secrets: Secrets) -> Client:
    return await Client.connect(
        settings.temporal_target,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(secrets),
    )
