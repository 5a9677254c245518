"""WebhookDeliveryWorkflow: one event to one application endpoint, retried for about 3 days.

Deterministic: the workflow owns the schedule (base delays with +-10 % jitter from
`workflow.random()`, a receiver's Retry-After honoured within bounds) and runs one
`deliver_webhook` activity per HTTP attempt. The activity signs, posts and records;
its result says whether to stop (2xx, 410 Gone, endpoint disabled or deleted) or retry.
The body arrives in the input (encrypted in history by the payload codec), so every
attempt sends the same bytes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from otp.webhooks.models import (
        ACTIVITY_DELIVER_WEBHOOK,
        MAX_ATTEMPTS,
        RETRY_SCHEDULE_S,
        TOTAL_BUDGET,
        DeliverWebhookInput,
        DeliverWebhookResult,
        DeliveryOutcome,
        MessageStatus,
        WebhookDeliveryInput,
        WebhookDeliveryResult,
        jittered,
        next_delay,
    )

# One HTTP attempt (10 s timeouts) plus DNS and store writes. The workflow owns retries:
# a failed activity counts as a failed attempt and waits for the next slot.
_ATTEMPT_TIMEOUT = timedelta(seconds=60)
_ONE_TRY = RetryPolicy(maximum_attempts=1)


def _human(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@workflow.defn
class WebhookDeliveryWorkflow:
    @workflow.run
    async def run(self, input: WebhookDeliveryInput) -> WebhookDeliveryResult:
        deadline = workflow.now() + TOTAL_BUDGET
        last_status: int | None = None
        attempt = 0
        while True:
            attempt += 1
            planned: float | None = None
            if attempt < MAX_ATTEMPTS:
                planned = jittered(RETRY_SCHEDULE_S[attempt - 1], workflow.random().random())
            result = await self._attempt(input, attempt, planned, deadline)
            if result.status_code is not None:
                last_status = result.status_code
            if result.outcome is DeliveryOutcome.SUCCEEDED:
                return WebhookDeliveryResult(
                    status=MessageStatus.SUCCEEDED, attempts=attempt, last_status_code=last_status
                )
            if result.outcome in (DeliveryOutcome.GONE, DeliveryOutcome.STOP):
                return WebhookDeliveryResult(
                    status=MessageStatus.DISABLED, attempts=attempt, last_status_code=last_status
                )
            remaining = (deadline - workflow.now()).total_seconds()
            if planned is None or remaining <= 0:
                return WebhookDeliveryResult(
                    status=MessageStatus.FAILED, attempts=attempt, last_status_code=last_status
                )
            delay = min(next_delay(planned, result.retry_after_s), remaining)
            why = f" (Retry-After {result.retry_after_s:.0f} s)" if delay > planned else ""
            await workflow.sleep(
                delay,
                summary=f"Wait {_human(delay)} before attempt {attempt + 1} of {MAX_ATTEMPTS}{why}",
            )

    async def _attempt(
        self,
        input: WebhookDeliveryInput,
        attempt: int,
        planned: float | None,
        deadline: datetime,
    ) -> DeliverWebhookResult:
        try:
            result: DeliverWebhookResult = await workflow.execute_activity(
                ACTIVITY_DELIVER_WEBHOOK,
                DeliverWebhookInput(
                    message_id=input.message_id,
                    endpoint_id=input.endpoint_id,
                    application_id=input.application_id,
                    mode=input.mode,
                    body=input.body,
                    attempt=attempt,
                    next_delay_s=planned,
                    deadline=deadline,
                ),
                result_type=DeliverWebhookResult,
                start_to_close_timeout=_ATTEMPT_TIMEOUT,
                retry_policy=_ONE_TRY,
                summary=f"POST {input.event_type}, attempt {attempt} of {MAX_ATTEMPTS}",
            )
        except ActivityError as err:
            # A worker crash or a store outage: not the receiver's fault, but the slot is used.
            cause = type(err.cause).__name__ if err.cause is not None else "ActivityError"
            return DeliverWebhookResult(outcome=DeliveryOutcome.RETRY, error=cause)
        return result
