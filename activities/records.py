"""Recording activity: the verification's row, its event log and its deliveries' costs,
written when it ends (each write idempotent: the delivery activity wrote most already)."""

from __future__ import annotations

import logging

from temporalio import activity

from otp.domain import (
    ACTIVITY_RECORD,
    RecordVerificationInput,
    RecordVerificationResult,
    VerificationState,
)
from otp.domain.destinations import country_of
from otp.store.costs import CostEntry, record_costs
from otp.store.events import EventRecorder

logger = logging.getLogger("otp.activities")


class RecordActivities:
    def __init__(self, recorder: EventRecorder) -> None:
        self._recorder = recorder

    @activity.defn(name=ACTIVITY_RECORD)
    async def record_verification(self, input: RecordVerificationInput) -> RecordVerificationResult:
        """Upsert the final record, add every logged change once, start due webhooks."""
        written, started = await self._recorder.record_state(
            input.verification_id,
            input.state,
            input.entries,
            country=input.country,
            final=input.final,
        )
        await record_costs(self._recorder.store, cost_entries(input.verification_id, input.state))
        logger.info(
            "verification recorded",
            extra={
                "verification_id": input.verification_id,
                "application_id": input.state.application_id,
                "status": input.state.status.value,
                "events_written": written,
                "webhooks_started": started,
            },
        )
        return RecordVerificationResult(events_written=written, webhooks_started=started)


def cost_entries(verification_id: str, state: VerificationState) -> list[CostEntry]:
    """The cost of every delivery the provider accepted (it has a message id)."""
    entries: list[CostEntry] = []
    for attempt in state.deliveries:
        if attempt.cost is None or not attempt.provider_message_id or not attempt.reference:
            continue
        step = (
            state.channels[attempt.step_index] if attempt.step_index < len(state.channels) else None
        )
        entries.append(
            CostEntry(
                delivery_key=attempt.reference,
                verification_id=verification_id,
                application_id=state.application_id,
                mode=state.mode.value,
                provider=attempt.provider or "",
                channel=attempt.channel.value,
                sent_at=attempt.started_at,
                cost=attempt.cost,
                provider_message_id=attempt.provider_message_id,
                country=country_of(step.to) if step and step.channel.is_phone else None,
                kind=attempt.kind.value,
                step_index=attempt.step_index,
            )
        )
    return entries
