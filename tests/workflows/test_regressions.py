"""Regression tests for workflow bugs found while writing the suite."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from temporalio import activity
from temporalio import workflow as temporalio_workflow
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.verification import verification_ended
from otp.domain import Channel, DeliverInput, DeliveryStatus, ErrorType, Status
from otp.observability import search_attributes as sa
from tests.helpers.workflows import (
    RECORDED,
    SCOPE,
    FakeDeliver,
    cancel_and_wait,
    check_input,
    fake_worker,
    fixed_code,
    fixed_issue_code,
    make_input,
    plan,
    seconds,
    start,
    transient,
    wait_for,
    wait_settled,
)
from workflows.verification import VerificationWorkflow


async def test_next_channel_does_not_wait_for_a_delivery_that_is_retrying(
    dev_env: WorkflowEnvironment, workflow_id: str, task_queue: str
) -> None:
    """Regression: next_channel blocked until the retrying step's whole budget ran out.

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


async def test_approval_while_a_step_is_retrying_closes_the_workflow_at_once(
    dev_env: WorkflowEnvironment, workflow_id: str, task_queue: str
) -> None:
    """Regression: an approved verification stayed open until a retrying delivery gave up.

    On the dev server, like the test above, and in real time: without the fix the result
    would only come after the sms step's 300 s budget. The delivery's retry asks the
    workflow first (`verification_ended`, as the production activity does) and stops,
    the provider knowing of no earlier send: nothing is sent after
    the approval and the workflow closes with the retry, not at the step's end.
    """
    ts_env = dev_env

    async def sms_down(input: DeliverInput, attempt: int) -> None:
        if input.channel is Channel.SMS:
            if attempt > 1 and await verification_ended(activity.info()):
                raise ApplicationError("ended", type=ErrorType.FINISHED, non_retryable=True)
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
        ok = await handle.execute_update(
            VerificationWorkflow.check, check_input(workflow_id, fixed_code(workflow_id))
        )
        assert ok.status is Status.APPROVED
        result = await asyncio.wait_for(handle.result(), timeout=10)
        description = await handle.describe()

    assert description.typed_search_attributes.get(sa.STATUS) == "approved"
    assert result.status is Status.APPROVED and result.finished_at is not None
    assert description.close_time is not None
    assert seconds(description.close_time - result.finished_at) < 5
    assert [d.channel for d in result.deliveries] == [Channel.SMS]  # no fallback after approval
    [sms] = result.deliveries
    assert (sms.status, sms.error_type) == (DeliveryStatus.FAILED, ErrorType.FINISHED)


async def test_concurrent_next_channel_calls_each_move_one_step(
    ts_env: WorkflowEnvironment, workflow_id: str, task_queue: str
) -> None:
    """Regression: two calls validated in one task skipped a step and one call never returned."""
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


async def _at_least(fake: FakeDeliver, count: int) -> bool:
    return len(fake.calls) >= count


async def test_resend_admitted_with_next_channel_does_not_replace_the_steps_own_send(
    ts_env: WorkflowEnvironment, workflow_id: str, task_queue: str
) -> None:
    """Regression: a resend handled right after next_channel (same task) stood in for the new
    step's own send, so that send never happened and next_channel waited until expiry."""
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


async def test_a_fired_timer_moves_the_plan_on_even_if_the_task_time_is_stale(
    ts_env: WorkflowEnvironment,
    workflow_id: str,
    task_queue: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Regression: after a dev server restart, the task that delivered the fallback timer
    carried the previous task's time; the loop found the step deadline not yet reached and
    armed the whole step timeout again, so the fallback came a step timeout late.

    Here the workflow's clock stops for good once the sms is sent (harsher than one stale
    task): the fired timers alone must carry the plan to the email step and to expiry.
    """
    real_now = temporalio_workflow.now
    frozen: list[datetime] = []
    fake = FakeDeliver()

    def stale_now() -> datetime:
        if fake.calls and not frozen:
            frozen.append(real_now())
        return frozen[0] if frozen else real_now()

    monkeypatch.setattr(temporalio_workflow, "now", stale_now)
    worker = Worker(
        ts_env.client,
        task_queue=task_queue,
        workflows=[VerificationWorkflow],
        activities=[fixed_issue_code, fake.deliver, RECORDED.record],
        # The real module (and so the patched clock), not the sandbox's copy.
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    async with worker:
        handle = await start(
            ts_env.client,
            workflow_id,
            task_queue,
            make_input(plan((Channel.SMS, 30), (Channel.EMAIL, 60)), ttl_s=300),
        )
        state = await asyncio.wait_for(handle.result(), timeout=30)

    assert frozen, "the clock was never frozen"
    assert [c.channel for c in fake.calls] == [Channel.SMS, Channel.EMAIL]
    sms, email = state.deliveries
    assert seconds(email.started_at - sms.started_at) == pytest.approx(30, abs=0.01)
    assert state.status is Status.EXPIRED
    assert state.finished_at is not None
    assert seconds(state.finished_at - state.created_at) == pytest.approx(300, abs=0.01)
