"""The floor: a bare Temporal workflow of the minimal OTP shape, run with the SDK only.

start -> one activity -> one update -> complete. No codec, no store, no HTTP: whatever
the service adds on top of this costs throughput, and `bench.run` reports the ratio.
Run as `python -m bench.floor ADDRESS TASK_QUEUE` to serve it from its own process,
like the service's worker.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker


@activity.defn(name="floor_send")
async def floor_send(destination: str) -> str:
    return f"sent:{len(destination)}"


@workflow.defn(name="FloorWorkflow")
class FloorWorkflow:
    def __init__(self) -> None:
        self._sent = False
        self._done = False

    @workflow.run
    async def run(self, destination: str) -> str:
        await workflow.execute_activity(
            floor_send, destination, start_to_close_timeout=timedelta(seconds=10)
        )
        self._sent = True
        await workflow.wait_condition(lambda: self._done)
        return "approved"

    @workflow.update
    async def check(self, code: str) -> bool:
        await workflow.wait_condition(lambda: self._sent)
        self._done = True
        return True


async def serve(address: str, task_queue: str) -> None:
    client = await Client.connect(address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Worker(
        client, task_queue=task_queue, workflows=[FloorWorkflow], activities=[floor_send]
    ):
        await stop.wait()


if __name__ == "__main__":
    from otp.process import run_and_exit

    run_and_exit(lambda: asyncio.run(serve(sys.argv[1], sys.argv[2])))
