"""Worker entry point: `python worker.py` (or `otp worker`).

Connects to Temporal with the shared encrypted converter and runs the
verification workflow and its activities until SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from temporalio.client import Client
from temporalio.worker import Worker

from activities.verification import VerificationActivities
from otp.domain import Channel
from otp.logs import setup_logging
from otp.process import run_and_exit
from otp.settings import Secrets, Settings, get_settings, load_secrets
from otp.store import Store
from otp.temporal import connect
from providers.base import Provider
from providers.sandbox import SandboxProvider
from providers.smtp import SmtpConfig, SmtpProvider
from workflows.verification import VerificationWorkflow

logger = logging.getLogger("otp.worker")


def live_providers(settings: Settings) -> dict[Channel, Provider]:
    """Providers used by live-mode keys, from settings."""
    smtp = SmtpProvider(
        SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            start_tls=settings.smtp_starttls,
            use_tls=settings.smtp_use_tls,
            timeout_s=settings.smtp_timeout_s,
        )
    )
    return {Channel.EMAIL: smtp}


def build_activities(settings: Settings, secrets: Secrets, store: Store) -> VerificationActivities:
    return VerificationActivities(
        code_secret=secrets.code_secret,
        sandbox=SandboxProvider(store),
        live_providers=live_providers(settings),
    )


def build_worker(client: Client, settings: Settings, activities: VerificationActivities) -> Worker:
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[VerificationWorkflow],
        activities=[activities.issue_code, activities.deliver],
    )


async def serve(settings: Settings) -> None:
    secrets = load_secrets(settings)
    store = Store(settings.store_url)
    await store.create_all()
    client = await connect(settings, secrets)
    worker = build_worker(client, settings, build_activities(settings, secrets, store))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    logger.info(
        "worker polling",
        extra={"task_queue": settings.task_queue, "temporal": settings.temporal_target},
    )
    async with worker:
        await stop.wait()
        logger.info("worker stopping: finishing in-flight tasks")
    await store.close()


def main() -> int:
    settings = get_settings()
    setup_logging(settings.log_level, settings.log_format)
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    run_and_exit(main)
