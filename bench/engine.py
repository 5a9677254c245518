"""Where the Temporal server's CPU per verification goes: the floor, then the service's
workflow features added one at a time.

    python -m bench.engine                     # C=20, 400 iterations per shape
    python -m bench.engine -n 200 --shapes floor,timer

`bench.run` shows the dev server spending more CPU on a verification than on the
bare-floor workflow. This script prices the difference. On a fresh dev server per shape
(in memory, the service's search attributes registered) it drives the same bare
workflow (start, one activity, one update, complete) in cumulative shapes:

| shape | adds |
| --- | --- |
| floor | nothing: `bench.floor`'s shape (the update is sent right after the start) |
| check-after-send | the update is sent once the activity ran, as a user checks a code they got |
| timer | the wait for the check has a deadline (a timer started, then canceled) |
| attributes | the service's search attributes at start and one upsert at the end |
| marker | a local activity at the end (the service's record) |
| payloads | input and result of the service's size (about 1 KB and 1.5 KB) |
| summaries | a summary on the activity, the timer and the local activity (shown in the UI) |

For each shape it prints the server's CPU ms per iteration (from /proc, the server
process only), throughput, and the actions and events of one execution's history.
The worker (unsandboxed) and load generator share this process: their CPU is printed
too but is not the point.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

with workflow.unsafe.imports_passed_through():
    from bench.run import (
        CpuMeter,
        Proc,
        Samples,
        closed_loop,
        count_history,
        dev_server_command,
        free_port,
        spawn,
        wait_until,
    )
    from otp.observability import search_attributes as sa

SHAPES = ("floor", "check-after-send", "timer", "attributes", "marker", "payloads", "summaries")
INPUT_BYTES, RESULT_BYTES = 1000, 1500


@dataclass
class Shape:
    check_after_send: bool = False
    timer: bool = False
    attributes: bool = False
    marker: bool = False
    padding: int = 0
    result_padding: int = 0
    summaries: bool = False


def shape_of(name: str) -> Shape:
    """The cumulative shape `name` (each one adds to the one before it)."""
    upto = SHAPES.index(name)
    return Shape(
        check_after_send=upto >= 1,
        timer=upto >= 2,
        attributes=upto >= 3,
        marker=upto >= 4,
        padding=INPUT_BYTES if upto >= 5 else 0,
        result_padding=RESULT_BYTES if upto >= 5 else 0,
        summaries=upto >= 6,
    )


# The worker runs in this process, unsandboxed: the workflow tells the driver when it
# waits for the check (a side effect outside history, harmless to this measurement).
_WAITING: dict[str, asyncio.Event] = {}


@activity.defn(name="engine_send")
async def engine_send(destination: str) -> str:
    return f"sent:{len(destination)}"


@activity.defn(name="engine_record")
async def engine_record(status: str) -> int:
    return len(status)


@workflow.defn(name="EngineShapeWorkflow")
class EngineShapeWorkflow:
    def __init__(self) -> None:
        self._sent = False
        self._done = False

    @workflow.run
    async def run(self, shape: Shape, destination: str) -> str:
        await workflow.execute_activity(
            engine_send,
            destination,
            start_to_close_timeout=timedelta(seconds=10),
            summary="deliver sms (step 1, step)" if shape.summaries else None,
        )
        self._sent = True
        waiting = _WAITING.get(workflow.info().workflow_id)
        if waiting is not None:
            waiting.set()
        if shape.timer:
            await workflow.wait_condition(
                lambda: self._done,
                timeout=timedelta(minutes=10),
                timeout_summary="wait for check: step 1 (sms) or expiry"
                if shape.summaries
                else None,
            )
        else:
            await workflow.wait_condition(lambda: self._done)
        if shape.marker:
            await workflow.execute_local_activity(
                engine_record,
                "approved",
                start_to_close_timeout=timedelta(seconds=10),
                summary="record approved" if shape.summaries else None,
            )
        if shape.attributes:
            workflow.upsert_search_attributes(
                [
                    sa.STATUS.value_set("approved"),
                    sa.CHANNEL.value_set("sms"),
                    sa.REASON.value_set("approved"),
                ]
            )
        return "approved" + "x" * shape.result_padding

    @workflow.update
    async def check(self, code: str) -> bool:
        await workflow.wait_condition(lambda: self._sent)
        self._done = True
        return True


def start_attributes() -> TypedSearchAttributes:
    """The search attributes the API starts a verification with."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(sa.STATUS, "pending"),
            SearchAttributePair(sa.CHANNEL, "sms"),
            SearchAttributePair(sa.APPLICATION, "app_bench"),
            SearchAttributePair(sa.MODE, "test"),
            SearchAttributePair(sa.COUNTRY, "US"),
        ]
    )


def iteration(client: Client, task_queue: str, shape: Shape, run: str):  # type: ignore[no-untyped-def]
    attributes = start_attributes() if shape.attributes else None
    destination = "+14155552671" + " " * shape.padding

    async def one(i: int, s: Samples) -> None:
        workflow_id = f"engine-{run}-{i}"
        waiting = _WAITING[workflow_id] = asyncio.Event()
        try:
            handle = await client.start_workflow(
                EngineShapeWorkflow.run,
                args=[shape, destination],
                id=workflow_id,
                task_queue=task_queue,
                search_attributes=attributes,
            )
            if shape.check_after_send:
                await waiting.wait()
            await handle.execute_update(EngineShapeWorkflow.check, "123456")
        finally:
            del _WAITING[workflow_id]

    return one


Row = tuple[str, float, float, float, int, int]


async def measure(name: str, args: argparse.Namespace, workdir: Path) -> Row:
    """One shape on a dev server of its own: a server that already holds the earlier
    shapes' executions spends more per iteration, which would bias the later shapes."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    server_args = dev_server_command(port)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTP_")}
    procs: list[Proc] = [spawn(f"temporal-{name}", server_args, env, workdir)]
    procs[0].name = "temporal"
    try:
        box: list[Client] = []

        async def up() -> bool:
            box[:] = [await Client.connect(address)]
            return True

        await wait_until("Temporal", up, procs)
        client = box[0]
        task_queue = f"engine-{uuid.uuid4().hex[:8]}"
        shape = shape_of(name)
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[EngineShapeWorkflow],
            activities=[engine_send, engine_record],
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            c = args.concurrency
            print(f"{name}: {args.iterations} iterations", file=sys.stderr)
            await closed_loop(c, c * 2, iteration(client, task_queue, shape, "warm"))
            with CpuMeter(procs) as meter:
                result = await closed_loop(
                    c, args.iterations, iteration(client, task_queue, shape, "run")
                )
            if result.errors:
                print(f"{name}: {result.errors} errors", file=sys.stderr)
            per = meter.per_iteration_ms(result.done)
            actions, events = await count_history(client, "engine-run-0")
        return (name, per["temporal"], per["load generator"], result.throughput, actions, events)
    finally:
        for p in procs:
            p.stop()


async def main(args: argparse.Namespace) -> int:
    names = [n.strip() for n in args.shapes.split(",") if n.strip()]
    unknown = [n for n in names if n not in SHAPES]
    if unknown:
        print(f"unknown shapes {unknown}; choose from {', '.join(SHAPES)}", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="otp-engine-"))
    rows = [await measure(name, args, workdir) for name in names]
    base = rows[0][1] if rows else 0.0
    print()
    print(
        f"{'shape':<17} {'server ms/iter':>15} {'vs first':>9} {'worker+driver ms':>17} "
        f"{'iter/s':>7} {'actions':>8} {'events':>7}"
    )
    for name, server_ms, rest_ms, rate, actions, events in rows:
        print(
            f"{name:<17} {server_ms:>15.1f} {server_ms - base:>+9.1f} {rest_ms:>17.1f} "
            f"{rate:>7.1f} {actions:>8} {events:>7}"
        )
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", "-c", type=int, default=20)
    parser.add_argument("--iterations", "-n", type=int, default=400, help="per shape")
    parser.add_argument(
        "--shapes", default=",".join(SHAPES), help=f"comma-separated, of {', '.join(SHAPES)}"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    from otp.process import run_and_exit

    run_and_exit(lambda: asyncio.run(main(parse_args())))
