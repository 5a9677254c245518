"""Worker entry point: `python worker.py` (or `otp worker`).

Connects to Temporal with the shared encrypted converter and runs the verification and
webhook workflows and their activities (wired in `activities.wiring`) until SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import httpx

from activities.wiring import WorkflowReceiptSink, build_activities, build_worker
from otp.observability import metrics, tracing
from otp.observability.logs import setup_logging
from otp.process import run_and_exit
from otp.settings import Settings, get_settings, load_secrets
from otp.store import Store, retention
from otp.temporal import connect
from workflows.monitor_start import start_monitor
from workflows.precompile import precompile_workflows

logger = logging.getLogger("otp.worker")


async def serve(settings: Settings) -> None:
    precompile_workflows()
    secrets = load_secrets(settings)
    store = Store(settings.store_url)
    await store.migrate()
    tracing.setup(settings, tracing.WORKER_SERVICE)
    # With OTP_WORKER_METRICS_ADDRESS, the runtime serves ours and the SDK's metrics.
    runtime = metrics.worker_runtime(settings.worker_metrics_address)
    client = await connect(settings, secrets, runtime=runtime)
    # One HTTP connection pool for every provider adapter, closed on shutdown.
    http = httpx.AsyncClient(follow_redirects=False, timeout=httpx.Timeout(15.0, connect=5.0))
    activities = build_activities(
        settings, secrets, store, receipts=WorkflowReceiptSink(client), http=http, client=client
    )
    worker = build_worker(client, settings, activities)

    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    logger.info(
        "worker polling",
        extra={
            "task_queue": settings.task_queue,
            "temporal": settings.temporal_target,
            "metrics": settings.worker_metrics_address,
        },
    )
    # One monitor per namespace (alerts and provider prices): started if none runs.
    await start_monitor(
        client, task_queue=settings.task_queue, interval_s=settings.alerts_interval_s
    )
    housekeeping = asyncio.create_task(retention.purge_periodically(store, settings))
    async with worker:
        await stop.wait()
        logger.info("worker stopping: finishing in-flight tasks")
    housekeeping.cancel()
    await activities.aclose()
    await http.aclose()
    await store.close()
    tracing.flush()


def main() -> int:
    settings = get_settings()
    setup_logging(settings.log_level, settings.log_format)
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    run_and_exit(main)
