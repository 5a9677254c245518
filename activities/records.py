"""Recording activity: the verification's row and its event log, written when it ends."""

from __future__ import annotations

import logging

from temporalio import activity

from otp.domain import ACTIVITY_RECORD, RecordVerificationInput, RecordVerificationResult
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
