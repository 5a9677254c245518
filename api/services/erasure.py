"""Export and erasure of everything held about one destination (GDPR art. 15 and 17).

For one application, one phone number or email address and one mode (or both): the
store's rows (`otp.store.erasure`: verification records, events, destination hashes,
sandbox messages, webhook messages and attempts, limiter rows keyed by the destination)
and the Temporal executions of its verifications and of their webhook deliveries.

Erasing deletes the executions first (a running one is terminated and deleted by the
server), so no workflow writes the destination back afterwards, then the store's rows
in one transaction; the verification rows stay, anonymised, for analytics. The answer
names the destination only masked. Used by the admin API and the `otp destinations` CLI.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from api.problems import field_error, invalid
from api.schemas.erasure import DestinationRequest
from api.services.applications import require_application
from otp.domain import Mode
from otp.domain.destinations import (
    InvalidDestinationError,
    mask,
    parse_any,
)
from otp.risk.limits import Limiter
from otp.risk.policy import failed_checks_key
from otp.store import Store
from otp.store import erasure as rows
from otp.store.events import destination_hash
from otp.webhooks.models import workflow_id as webhook_workflow_id

logger = logging.getLogger("api.services.erasure")


@dataclass
class Execution:
    """A Temporal execution of the subject's: a verification or a webhook delivery."""

    workflow_id: str
    kind: str  # verification | webhook_delivery
    status: str | None = None  # as Temporal describes it; None: not (or no longer) held


@dataclass
class Report:
    """What was found (export) or removed (erase) about one destination."""

    application_id: str
    to: str  # masked
    modes: list[str]
    verification_ids: list[str]
    tables: dict[str, int]
    executions: list[Execution]
    rows: dict[str, list[dict[str, Any]]] | None = None  # export only
    executions_deleted: list[str] = field(default_factory=list)


def subject_of(*, secret: bytes, application_id: str, to: str, mode: Mode | None) -> rows.Subject:
    """The subject of a request; `InvalidDestinationError` when `to` is neither a valid
    E.164 phone number nor an email address."""
    parsed = parse_any(to)
    modes = (mode.value,) if mode is not None else (Mode.LIVE.value, Mode.TEST.value)
    return rows.Subject(
        application_id=application_id,
        modes=modes,
        destination=parsed.value,
        destination_hash=destination_hash(secret, parsed.value),
    )


def _executions(subject: rows.Subject, message_endpoints: list[tuple[str, str]]) -> list[Execution]:
    found = [Execution(vid, "verification") for vid in subject.verification_ids]
    found += [
        Execution(webhook_workflow_id(message, endpoint), "webhook_delivery")
        for message, endpoint in message_endpoints
    ]
    return found


def _message_endpoints(found: rows.Found) -> list[tuple[str, str]]:
    return sorted(
        {(m["message_id"], m["endpoint_id"]) for m in found.rows.get("webhook_messages", [])}
    )


async def _describe(client: Client, execution: Execution) -> None:
    try:
        described = await client.get_workflow_handle(execution.workflow_id).describe()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        return
    execution.status = described.status.name if described.status is not None else "UNKNOWN"


async def _delete(client: Client, workflow_id: str) -> bool:
    """Delete the execution (the server terminates it first if it runs); False: none."""
    request = DeleteWorkflowExecutionRequest(
        namespace=client.namespace, workflow_execution=WorkflowExecution(workflow_id=workflow_id)
    )
    try:
        await client.workflow_service.delete_workflow_execution(request)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def export_destination(
    store: Store,
    client: Client | None,
    *,
    secret: bytes,
    application_id: str,
    to: str,
    mode: Mode | None = None,
) -> Report:
    """Everything held about the destination: the store's rows and the executions."""
    subject = await rows.find(
        store, subject_of(secret=secret, application_id=application_id, to=to, mode=mode)
    )
    found = await rows.export(store, subject)
    executions = _executions(subject, _message_endpoints(found))
    if client is not None:
        for execution in executions:
            await _describe(client, execution)
    return Report(
        application_id=application_id,
        to=mask(subject.destination),
        modes=list(subject.modes),
        verification_ids=list(subject.verification_ids),
        tables=found.counts,
        executions=[e for e in executions if client is None or e.status is not None],
        rows=found.rows,
    )


async def erase_destination(
    store: Store,
    client: Client | None,
    *,
    secret: bytes,
    application_id: str,
    to: str,
    mode: Mode | None = None,
    limiter: Limiter | None = None,
) -> Report:
    """Erase everything held about the destination (see the module docstring)."""
    subject = await rows.find(
        store, subject_of(secret=secret, application_id=application_id, to=to, mode=mode)
    )
    found = await rows.export(store, subject)
    executions = _executions(subject, _message_endpoints(found))
    deleted: list[str] = []
    if client is not None:
        for execution in executions:
            await _describe(client, execution)
            if await _delete(client, execution.workflow_id):
                deleted.append(execution.workflow_id)
    # The rows again now that no workflow of the subject's runs: none writes them back.
    subject = await rows.find(store, subject)
    counts = await rows.erase(store, subject)
    if limiter is not None:  # counters held outside the store (Redis)
        for value in subject.modes:
            await limiter.reset(
                failed_checks_key(application_id, Mode(value), subject.destination_hash)
            )
    logger.info(
        "destination erased",
        extra={
            "event": "destination.erased",
            "application_id": application_id,
            "verifications": len(subject.verification_ids),
            "executions_deleted": len(deleted),
            "rows": sum(counts.values()),
        },
    )
    return Report(
        application_id=application_id,
        to=mask(subject.destination),
        modes=list(subject.modes),
        verification_ids=list(subject.verification_ids),
        tables=counts,
        executions=[e for e in executions if client is None or e.status is not None],
        executions_deleted=deleted,
    )


# ----------------------------------------------------------------- the admin API's side
async def _checked(store: Store, *, secret: bytes, application_id: str, to: str) -> None:
    """404 problem for an unknown application, 422 for a destination that is none."""
    await require_application(store, application_id)
    try:
        subject_of(secret=secret, application_id=application_id, to=to, mode=None)
    except InvalidDestinationError as exc:
        raise invalid([field_error("/to", str(exc))]) from None


async def export_request(
    store: Store,
    client: Client,
    *,
    secret: bytes,
    application_id: str,
    body: DestinationRequest,
) -> Report:
    """`export_destination` for an admin request."""
    await _checked(store, secret=secret, application_id=application_id, to=body.to)
    return await export_destination(
        store, client, secret=secret, application_id=application_id, to=body.to, mode=body.mode
    )


async def erase_request(
    store: Store,
    client: Client,
    limiter: Limiter,
    *,
    secret: bytes,
    application_id: str,
    body: DestinationRequest,
) -> Report:
    """`erase_destination` for an admin request."""
    await _checked(store, secret=secret, application_id=application_id, to=body.to)
    return await erase_destination(
        store,
        client,
        secret=secret,
        application_id=application_id,
        to=body.to,
        mode=body.mode,
        limiter=limiter,
    )
