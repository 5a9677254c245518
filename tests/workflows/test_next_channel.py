"""next_channel (a Workflow Update): falling back to the next step of the plan at once."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from otp.domain import Channel, DeliverInput, DeliveryKind, DeliveryStatus, ErrorType, Status
from otp.store import Store
from tests.helpers.workflows import (
    SCOPE,
    FakeDeliver,
    cancel_and_wait,
    check_input,
    fake_worker,
    inbox_codes,
    make_input,
    plan,
    seconds,
    start,
    transient,
    wait_for,
    wait_settled,
)
from workflows.verification import VerificationWorkflow


async def test_next_channel_moves_on_at_once_and_stops_at_the_last_step(
    ts_env: WorkflowEnvironment,
    sandbox_worker: Worker,
    store: Store,
    workflow_id: str,
    task_queue: str,
) -> None:
    handle = await start(
        ts_env.client,
        workflow_id,
        task_queue,
        make_input(plan((Channel.SMS, 300), (Channel.EMAIL, 300)), ttl_s=3600),
    )
    (code,) = await inbox_codes(store, workflow_id)
    await wait_settled(handle)

    moved = await handle.execute_update(VerificationWorkflow.next_channel, SCOPE)
    assert moved.step_index == 1
    assert moved.delivery.channel is Channel.EMAIL
    assert moved.delivery.kind is DeliveryKind.STEP
    assert moved.delivery.status is DeliveryStatus.DELIVERED

    state = await handle.query(VerificationWorkflow.state)
    assert state.current_step == 1
    sms, email = state.deliveries
    # No time skipping while the test awaits an update: this is real time, not the 300 s timer.
    assert seconds(email.started_at - sms.started_at) < 10
    assert await inbox_codes(store, workflow_id, count=2) == [code, code]

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(VerificationWorkflow.next_channel, SCOPE)
    assert isinstance(refused.value.cause, ApplicationError)
    assert refused.value.cause.type == ErrorType.NO_MORE_CHANNELS

    ok = await handle.execute_update(VerificationWorkflow.check, check_input(workflow_id, code))
    assert ok.status is Status.APPROVED
    assert (await handle.result()).current_step == 1


async def test_next_channel_does_not_wait_for_a_delivery_that_is_retrying(
    dev_env: WorkflowEnvironment, workflow_id: str, task_queue: str
) -> None:
    """next_channel cancels a delivery that is retrying instead of waiting for its budget.

    On the dev server: the Java time-skipping server answers a cancel of an activity
    waiting for its next retry with ACTIVITY_UNKNOWN and then stops skipping time.
    """
    ts_env = dev_env

    async def sms_down(input: DeliverInput, _attempt: int) -> None:
        if input.channel is Channel.SMS:
            raise transient()

    fake = FakeDeliver(sms_down)
    async with fake_worker(ts_env.client, task_queue, fake):
        handle = await start(
            ts_env.client,
            workflow_id,
            task_queue,
            make_input(plan((Channel.SMS, 300), (Channel.EMAIL, 300)), ttl_s=3600),
        )
        await wait_for(lambda: _at_least(fake, 1), what="first sms attempt")
        moved = await asyncio.wait_for(
            handle.execute_update(VerificationWorkflow.next_channel, SCOPE), timeout=10
        )
        state = await handle.query(VerificationWorkflow.state)
        await cancel_and_wait(handle)

    assert moved.step_index == 1 and moved.delivery.channel is Channel.EMAIL
    sms, email = state.deliveries
    assert sms.status is DeliveryStatus.FAILED and sms.error_type == "DeliveryCanceled"
    assert seconds(email.started_at - sms.started_at) < 5  # not the sms step's 300 s budget


async def test_concurrent_next_channel_calls_each_move_one_step(
    ts_env: WorkflowEnvironment, workflow_id: str, task_queue: str
) -> None:
    """Two calls validated in one task move one step each: none skipped, both answered."""
    fake = FakeDeliver()
    handle = await start(
        ts_env.client,
        workflow_id,
        task_queue,
        make_input(
            plan((Channel.SMS, 300), (Channel.EMAIL, 300), (Channel.VOICE, 300)), ttl_s=3600
        ),
    )
    calls = [
        asyncio.create_task(handle.execute_update(VerificationWorkflow.next_channel, SCOPE))
        for _ in range(2)
    ]
    await asyncio.sleep(0.5)  # both are admitted before a worker takes the first task
    async with fake_worker(ts_env.client, task_queue, fake):
        moved = await asyncio.wait_for(asyncio.gather(*calls), timeout=10)
        state = await handle.query(VerificationWorkflow.state)
        await cancel_and_wait(handle)

    assert sorted(m.step_index for m in moved) == [1, 2]
    assert [c.channel for c in fake.calls] == [Channel.EMAIL, Channel.VOICE]
    assert state.current_step == 2
    assert all(d.status is DeliveryStatus.SENT for d in state.deliveries)


async def test_resend_admitted_with_next_channel_does_not_replace_the_steps_own_send(
    ts_env: WorkflowEnvironment, workflow_id: str, task_queue: str
) -> None:
    """A resend handled right after next_channel (same task) is refused as "just sent": it
    never stands in for the new step's own send, which next_channel waits for."""
    fake = FakeDeliver()
    handle = await start(
        ts_env.client,
        workflow_id,
        task_queue,
        make_input(plan((Channel.SMS, 300), (Channel.EMAIL, 300)), ttl_s=3600, resend_cooldown_s=5),
    )
    async with fake_worker(ts_env.client, task_queue, fake, max_cached_workflows=0):
        await wait_for(lambda: _at_least(fake, 1), what="the first step's send")
        await wait_settled(handle)
    await ts_env.sleep(10)  # past the resend cooldown
    next_call = asyncio.create_task(handle.execute_update(VerificationWorkflow.next_channel, SCOPE))
    await asyncio.sleep(0.3)
    resend_call = asyncio.create_task(handle.execute_update(VerificationWorkflow.resend, SCOPE))
    await asyncio.sleep(0.5)  # both are admitted before a worker takes the task
    async with fake_worker(ts_env.client, task_queue, fake, max_cached_workflows=0):
        moved = await asyncio.wait_for(next_call, timeout=10)
        await asyncio.gather(resend_call, return_exceptions=True)
        state = await wait_settled(handle, 2)
        await cancel_and_wait(handle)

    assert moved.step_index == 1
    step_sends = [d for d in state.deliveries if d.kind.value == "step"]
    assert [(d.step_index, d.channel) for d in step_sends] == [(0, Channel.SMS), (1, Channel.EMAIL)]
    assert moved.delivery.channel is Channel.EMAIL and moved.delivery.kind.value == "step"


async def _at_least(fake: FakeDeliver, count: int) -> bool:
    return len(fake.calls) >= count
