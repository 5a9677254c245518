"""The API's writes to the event log: what it learns first (a start, a wrong code, a
delivery receipt) is logged at once, best effort. The workflow's final batch carries
the same entries under the same keys, so a write lost here is never lost for good."""

from __future__ import annotations

import logging

from temporalio.client import Client

from otp.domain import (
    CheckResult,
    DeliveryReceiptInput,
    EventType,
    LogEntry,
    Mode,
    VerificationInput,
    VerificationState,
    WebhookEvent,
)
from otp.settings import Secrets, Settings
from otp.store import Store, utcnow
from otp.store.events import Dispatch, EventRecorder, Verification

logger = logging.getLogger("otp.api")


def build_recorder(
    store: Store, client: Client, secrets: Secrets, settings: Settings
) -> EventRecorder:
    """The recorder of an app: event log writes, and webhook events handed to Temporal."""
    from workflows.dispatch import start_webhook_deliveries

    async def dispatch(event: WebhookEvent) -> int:
        return await start_webhook_deliveries(client, store, event, task_queue=settings.task_queue)

    handoff: Dispatch = dispatch
    return EventRecorder(store, secrets.code_secret, dispatch=handoff)


async def record_created(
    recorder: EventRecorder | None, verification_id: str, input: VerificationInput
) -> None:
    if recorder is None:
        return
    created = input.created_at or utcnow()
    state = VerificationState.initial(input, created)
    entry = LogEntry(
        key="created",
        type=EventType.CREATED,
        occurred_at=created,
        channel=input.channels[0].channel,
        step_index=0,
    )
    try:
        await recorder.record_state(
            verification_id, state, [entry], country=input.country, final=False
        )
    except Exception:
        logger.warning(
            "event log write failed; the final record will carry it",
            extra={"verification_id": verification_id},
            exc_info=True,
        )


async def record_check(
    recorder: EventRecorder | None,
    verification_id: str,
    result: CheckResult,
    *,
    application_id: str,
    mode: Mode,
) -> None:
    """A wrong code, logged at once (the approval comes with the workflow's final batch)."""
    if recorder is None or result.valid or result.attempts_used <= 0:
        return
    entry = LogEntry(
        key=f"check:{result.attempts_used}",
        type=EventType.CHECK_FAILED,
        occurred_at=utcnow(),
        reason="incorrect code",
    )
    verification = Verification(
        id=verification_id,
        application_id=application_id,
        mode=mode,
        country=None,
        destinations={},
    )
    try:
        await recorder.record(verification, [entry], dispatch=False)
    except Exception:
        logger.warning(
            "event log write failed; the final record will carry it",
            extra={"verification_id": verification_id},
            exc_info=True,
        )


async def record_receipt(
    recorder: EventRecorder | None,
    verification_id: str,
    receipt: DeliveryReceiptInput,
    *,
    signaled: bool = False,
) -> None:
    if recorder is None:
        return
    try:
        await recorder.record_receipt(verification_id, receipt, signaled=signaled)
    except Exception:
        logger.warning(
            "receipt not logged", extra={"verification_id": verification_id}, exc_info=True
        )
