"""Operator commands: `otp verifications show` (a verification's timeline) and `otp replay`
(replay histories with the code about to be deployed: a non-determinism check).
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.common import fail
from otp.settings import get_settings

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowHistory

    from otp.store import VerificationEvent, VerificationRecord

verifications_app = typer.Typer(
    help="Look up verifications: status, reason and the timeline of their event log.",
    no_args_is_help=True,
)


def _offset(start: datetime, at: datetime) -> str:
    return f"+{(at - start).total_seconds():9.3f}s"


def render_timeline(record: VerificationRecord, events: list[VerificationEvent]) -> list[str]:
    """Human lines: the record, then each event relative to the creation time."""
    lines = [
        f"{record.id}  {record.status}" + (f"  ({record.reason})" if record.reason else ""),
        f"  application {record.application_id} ({record.mode})  to {record.to_masked}"
        + (f"  country {record.country}" if record.country else ""),
        f"  plan {' -> '.join(record.channels)}  created {record.created_at:%Y-%m-%d %H:%M:%S}"
        f"  expires {record.expires_at:%H:%M:%S}",
        f"  checks {record.attempts_used}/{record.max_attempts}  sends {record.sends}"
        f"  delivered {'yes' if record.delivered else 'no'}  fallbacks {record.fallbacks}"
        + (
            f"  verified in {record.time_to_verify_ms / 1000:.1f}s"
            if record.time_to_verify_ms is not None
            else ""
        ),
        "",
    ]
    for event in events:
        detail = " ".join(
            part
            for part in (
                event.channel or "",
                f"via {event.provider}" if event.provider else "",
                f"step {event.step_index + 1}" if event.step_index is not None else "",
                f"[{event.reason}]" if event.reason else "",
            )
            if part
        )
        lines.append(f"  {_offset(record.created_at, event.occurred_at)}  {event.type:<22}{detail}")
    return lines


@verifications_app.command("show")
def show(
    verification_id: Annotated[str, typer.Argument(help="The verification id (ver_...).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Print a verification's record and timeline from the store (no code, destinations
    masked). Works for finished verifications after Temporal forgot them."""
    from otp.store import Store, VerificationRecord
    from otp.store import records as store_records

    settings = get_settings()

    async def load() -> tuple[VerificationRecord | None, list[VerificationEvent]]:
        store = Store(settings.store_url)
        try:
            await store.migrate()
            async with store.session() as session:
                record = await session.get(VerificationRecord, verification_id)
            if record is None:
                return None, []
            events = await store_records.list_events(
                store,
                verification_id=verification_id,
                application_id=record.application_id,
                mode=record.mode,
            )
            return record, events
        finally:
            await store.close()

    record, events = asyncio.run(load())
    if record is None:
        fail(f"no verification {verification_id} in the store")
        return
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "verification": record.model_dump(mode="json", exclude={"snapshot"}),
                    "events": [e.model_dump(mode="json") for e in events],
                },
                indent=2,
            )
        )
        return
    for line in render_timeline(record, events):
        typer.echo(line)


# ------------------------------------------------------------------------- replay
def _key_ids(history: WorkflowHistory) -> set[str]:
    """The codec key ids the history's payloads were encrypted with."""
    from google.protobuf.json_format import MessageToDict

    from otp.security.codec import KEY_ID_META

    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            meta = node.get("metadata")
            if isinstance(meta, dict) and KEY_ID_META in meta:
                found.add(base64.b64decode(meta[KEY_ID_META]).decode(errors="replace"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for event in history.events:
        walk(MessageToDict(event))
    return found


async def _replay(histories: list[WorkflowHistory]) -> list[tuple[str, str, str | None]]:
    """(workflow id, verdict, detail) for each history replayed with this code: verdict
    `ok`, `broken` (the code would not replay it: non-determinism) or `unreadable`."""
    import logging

    from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
    from temporalio.worker import Replayer
    from temporalio.workflow import NondeterminismError

    from otp.security.codec import data_converter
    from otp.settings import load_secrets
    from workflows.provider_check import ProviderCheckWorkflow
    from workflows.verification import VerificationWorkflow
    from workflows.webhooks import WebhookDeliveryWorkflow

    # The verdict is printed here; the SDK's own task-failure logs would only repeat it.
    logging.getLogger("temporalio").setLevel(logging.CRITICAL)
    quiet = Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))
        )
    )
    secrets = load_secrets(get_settings())
    replayer = Replayer(
        workflows=[VerificationWorkflow, WebhookDeliveryWorkflow, ProviderCheckWorkflow],
        data_converter=data_converter(secrets),
        runtime=quiet,
    )
    outcomes: list[tuple[str, str, str | None]] = []
    for history in histories:
        missing = _key_ids(history) - set(secrets.codec_keys)
        if missing:
            outcomes.append(
                (
                    history.workflow_id,
                    "unreadable",
                    f"encrypted with codec key id(s) {', '.join(sorted(missing))}, "
                    "which OTP_CODEC_KEYS does not hold",
                )
            )
            continue
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        failure = result.replay_failure
        if failure is None:
            outcomes.append((history.workflow_id, "ok", None))
        elif isinstance(failure, NondeterminismError):
            outcomes.append((history.workflow_id, "broken", str(failure)))
        else:
            outcomes.append((history.workflow_id, "unreadable", f"{type(failure).__name__}"))
    return outcomes


async def _from_cluster(
    client: Client, workflow_id: str | None, query: str | None, limit: int
) -> list[WorkflowHistory]:
    if workflow_id:
        return [await client.get_workflow_handle(workflow_id).fetch_history()]
    histories = []
    async for execution in client.list_workflows(query, limit=limit):
        histories.append(
            await client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history()
        )
    return histories


def replay(
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            exists=True,
            dir_okay=False,
            help="A history in JSON (`temporal workflow show -o json`).",
        ),
    ] = None,
    workflow_id: Annotated[
        str | None,
        typer.Option("--workflow-id", "-w", help="Fetch this workflow's history from Temporal."),
    ] = None,
    query: Annotated[
        str | None,
        typer.Option(
            "--query",
            "-q",
            help="Replay the workflows a visibility query lists, e.g. "
            "\"ExecutionStatus='Running'\".",
        ),
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many workflows (--query).")] = 100,
) -> None:
    """Replay workflow histories with the current code; exit 1 if any would break.

    Run it before a deploy against running (and recent) workflows: a change to the
    workflow code that is not replay-safe fails here instead of in production.
    """
    if sum(x is not None for x in (file, workflow_id, query)) != 1:
        fail("give exactly one of --file, --workflow-id or --query", code=2)

    async def collect() -> list[WorkflowHistory]:
        from temporalio.client import WorkflowHistory

        if file is not None:
            text = file.read_text()
            found_id = workflow_id or _workflow_id_in(text) or file.stem
            return [WorkflowHistory.from_json(found_id, text)]
        from otp.settings import load_secrets
        from otp.temporal import connect

        settings = get_settings()
        client = await connect(settings, load_secrets(settings))
        return await _from_cluster(client, workflow_id, query, limit)

    async def run() -> list[tuple[str, str, str | None]]:
        return await _replay(await collect())

    outcomes = asyncio.run(run())
    if not outcomes:
        typer.echo("no workflow matched: nothing replayed")
        return
    for ident, verdict, detail in outcomes:
        typer.echo(f"{verdict:<10}  {ident}" + (f": {detail}" if detail else ""))
    bad = sum(1 for _, verdict, _ in outcomes if verdict != "ok")
    typer.echo(f"{len(outcomes) - bad} replayed, {bad} not")
    if bad:
        raise typer.Exit(1)


def _workflow_id_in(text: str) -> str | None:
    """The workflow id a JSON history names, when it does (`temporal workflow show`)."""
    try:
        data: Any = json.loads(text)
        started = data["events"][0]["workflowExecutionStartedEventAttributes"]
        return None if not isinstance(started, dict) else started.get("workflowId")
    except (ValueError, KeyError, IndexError, TypeError):
        return None
