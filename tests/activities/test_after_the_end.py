"""A delivery retry that comes due after its verification ended sends nothing.

The activity asks the real workflow (dev server, production worker) whether the
verification is still open; an earlier attempt's message, where the provider can tell
(the sandbox by delivery key), is reported as sent instead of failed.
"""

from __future__ import annotations

import dataclasses

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.verification import VerificationActivities, verification_ended
from otp.domain import Channel, DeliveryStatus, ErrorType, Status
from otp.settings import Settings
from otp.store import Store
from tests.activities.conftest import deliver_input, make_activities
from tests.conftest import real_worker
from tests.helpers.workflows import APP, SCOPE, make_input, plan, start
from workflows.verification import VerificationWorkflow


def retry_env(client: object, workflow_id: str, run_id: str, attempt: int) -> ActivityEnvironment:
    env = ActivityEnvironment(client=client)  # type: ignore[arg-type]
    env.info = dataclasses.replace(
        env.info,
        workflow_id=workflow_id,
        workflow_run_id=run_id,
        activity_id="9",
        attempt=attempt,
    )
    return env


async def test_a_retry_after_the_end_reports_an_earlier_send_and_sends_nothing_new(
    dev_env: WorkflowEnvironment,
    settings: Settings,
    store: Store,
    workflow_id: str,
    task_queue: str,
) -> None:
    activities: VerificationActivities = make_activities(store)
    # The worker stays up: a query, even of a closed workflow, is answered by a worker.
    async with real_worker(dev_env.client, settings, store):
        handle = await start(
            dev_env.client,
            workflow_id,
            task_queue,
            make_input(plan((Channel.SMS, 300), (Channel.EMAIL, 300))),
        )
        run_id = handle.result_run_id or ""
        open_env = retry_env(dev_env.client, workflow_id, run_id, attempt=2)
        assert not await open_env.run(verification_ended, open_env.info)

        state = await handle.query(VerificationWorkflow.state)
        while not state.deliveries or state.deliveries[0].status is DeliveryStatus.SENDING:
            state = await handle.query(VerificationWorkflow.state)
        [sms] = state.deliveries
        await handle.execute_update(VerificationWorkflow.cancel, SCOPE)
        assert (await handle.result()).status is Status.CANCELED
        before = await store.list_sandbox_messages(application_id=APP, limit=100)

        # A retry of the delivery that reached the inbox: reported, not sent again.
        env = retry_env(dev_env.client, workflow_id, run_id, attempt=2)
        assert await env.run(verification_ended, env.info)
        again = await env.run(
            activities.deliver, deliver_input(workflow_id, delivery_key=sms.reference)
        )
        assert (again.status, again.provider_message_id) == (
            DeliveryStatus.DELIVERED,
            sms.provider_message_id,
        )
        # A retry of a delivery that never went out: refused, not sent.
        with pytest.raises(ApplicationError) as refused:
            await env.run(
                activities.deliver, deliver_input(workflow_id, delivery_key=f"{sms.reference}-x")
            )
        assert refused.value.type == ErrorType.FINISHED and refused.value.non_retryable
        assert await store.list_sandbox_messages(application_id=APP, limit=100) == before

        # A first attempt is never held up by the question (nor refused by it).
        first = retry_env(dev_env.client, workflow_id, run_id, attempt=1)
        sent = await first.run(
            activities.deliver, deliver_input(workflow_id, delivery_key=f"{sms.reference}-y")
        )
        assert sent.status is DeliveryStatus.DELIVERED
        assert (
            len(await store.list_sandbox_messages(application_id=APP, limit=100)) == len(before) + 1
        )
