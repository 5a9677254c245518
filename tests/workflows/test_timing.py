"""Fallback, expiry and delivery-failure timing on the time-skipping server."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from temporalio import workflow as temporalio_workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from otp.domain import (
    Channel,
    DeliverInput,
    DeliveryReceiptInput,
    DeliveryStatus,
    ErrorType,
    Status,
)
from otp.store import Store
from tests.helpers.workflows import (
    RECORDED,
    FakeDeliver,
    cancel_and_wait,
    fake_worker,
    fixed_issue_code,
    inbox_codes,
    make_input,
    permanent,
    plan,
    seconds,
    start,
    transient,
    wait_for,
    wait_settled,
    wait_state,
)
from workflows.verification import VerificationWorkflow

TOLERANCE_S = 0.5


async def test_fallback_starts_second_step_exactly_after_first_step_timeout(
    ts_env: WorkflowEnvironment,
    sandbox_worker: Worker,
    store: Store,
    workflow_id: str,
    task_queue: str,
) -> None:
    """sms for 30 s, then email: the email delivery starts 30 s after the sms one."""
    handle = await start(
        ts_env.client,
        workflow_id,
        task_queue,
        make_input(plan((Channel.SMS, 30), (Channel.EMAIL, 60)), ttl_s=600),
    )
    result = await handle.result()  # fast-forwards through both steps to expiry

    assert [d.channel for d in result.deliveries] == [Channel.SMS, Channel.EMAIL]
    gap = seconds(result.deliveries[1].started_at - result.deliveries[0].started_at)
    assert abs(gap - 30) < TOLERANCE_S, gap
    assert all(d.status is DeliveryStatus.DELIVERED for d in result.deliveries)
    # The fallback re-delivers the same code.
    codes = await inbox_codes(store, workflow_id, count=2)
    assert len(codes) == 2 and codes[0] == codes[1]
    assert result.status is Status.EXPIRED


async def test_a_fired_timer_moves_the_plan_on_even_if_the_task_time_is_stale(
    ts_env: WorkflowEnvironment,
    workflow_id: str,
    task_queue: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fired timer is proof of the time: the plan moves on even when the task's time is stale.

    After a dev server restart the task that delivers the fallback timer can carry the
    previous task's time: trusting it, the loop would find the step deadline not yet
    reached and arm the whole step timeout again (a fallback a step timeout late).

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


async def test_ttl_expires_at_exactly_ten_minutes(
    ts_env: WorkflowEnvironment, sandbox_worker: Worker, workflow_id: str, task_queue: str
) -> None:
    handle = await start(
        ts_env.client, workflow_id, task_queue, make_input(plan((Channel.SMS, 60)), ttl_s=600)
    )
    result = await handle.result()

    assert result.status is Status.EXPIRED
    assert result.reason and "expired" in result.reason
    assert result.finished_at is not None
    lifetime = seconds(result.finished_at - result.created_at)
    assert abs(lifetime - 600) < TOLERANCE_S, lifetime
    assert result.expires_at - result.created_at == timedelta(seconds=600)
    assert result.attempts_used == 0


async def test_every_step_failing_permanently_is_undeliverable_without_waiting(
    ts_env: WorkflowEnvironment, workflow_id: str, task_queue: str
) -> None:
    async def fail(_input: DeliverInput, _attempt: int) -> None:
        raise permanent()

    fake = FakeDeliver(fail)
    async with fake_worker(ts_env.client, task_queue, fake):
        handle = await start(
            ts_env.client,
            workflow_id,
            task_queue,
            make_input(plan((Channel.SMS, 300), (Channel.EMAIL, 300)), ttl_s=3600),
        )
        result = await handle.result()

    assert result.status is Status.UNDELIVERABLE
    assert result.finished_at is not None
    assert seconds(result.finished_at - result.created_at) < 1  # no step timer was waited out
    assert [d.status for d in result.deliveries] == [DeliveryStatus.FAILED] * 2
    assert {d.error_type for d in result.deliveries} == {ErrorType.PERMANENT_DELIVERY}
    # Non-retryable: one attempt per step.
    assert [(c.channel, c.attempt) for c in fake.calls] == [(Channel.SMS, 1), (Channel.EMAIL, 1)]


async def test_transient_failures_are_retried_within_the_step_budget_then_fall_back(
    ts_env: WorkflowEnvironment, workflow_id: str, task_queue: str
) -> None:
    async def sms_down(input: DeliverInput, _attempt: int) -> None:
        if input.channel is Channel.SMS:
            raise transient()

    fake = FakeDeliver(sms_down)
    async with fake_worker(ts_env.client, task_queue, fake):
        handle = await start(
            ts_env.client,
            workflow_id,
            task_queue,
            make_input(plan((Channel.SMS, 30), (Channel.EMAIL, 60)), ttl_s=600),
        )
        result = await handle.result()

    sms_attempts = [c.attempt for c in fake.calls if c.channel is Channel.SMS]
    assert len(sms_attempts) >= 3 and sms_attempts == list(range(1, len(sms_attempts) + 1))
    sms, email = result.deliveries
    assert sms.status is DeliveryStatus.FAILED
    assert sms.error_type in {ErrorType.TRANSIENT_DELIVERY, "DeliveryTimeout"}
    assert email.channel is Channel.EMAIL and email.status is DeliveryStatus.SENT
    # Retries stop when the next one would overrun the step's 30 s budget (the server does
    # not schedule a retry past schedule_to_close): fallback comes then, never after 30 s.
    gap = seconds(email.started_at - sms.started_at)
    backoff = sum(min(2**n, 10) for n in range(len(sms_attempts) - 1))  # 1, 2, 4, 8, 10 s
    assert backoff <= gap <= 30 + TOLERANCE_S, gap


async def test_transient_failure_then_success_keeps_the_step_and_its_timer(
    ts_env: WorkflowEnvironment, workflow_id: str, task_queue: str
) -> None:
    async def flaky(input: DeliverInput, attempt: int) -> None:
        if input.channel is Channel.SMS and attempt < 3:
            raise transient()

    fake = FakeDeliver(flaky)
    async with fake_worker(ts_env.client, task_queue, fake):
        handle = await start(
            ts_env.client,
            workflow_id,
            task_queue,
            make_input(plan((Channel.SMS, 30), (Channel.EMAIL, 60)), ttl_s=600),
        )
        result = await handle.result()

    assert [(c.channel, c.attempt) for c in fake.calls] == [
        (Channel.SMS, 1),
        (Channel.SMS, 2),
        (Channel.SMS, 3),
        (Channel.EMAIL, 1),
    ]
    sms, email = result.deliveries
    assert sms.status is DeliveryStatus.SENT and sms.provider == "fake"
    assert abs(seconds(email.started_at - sms.started_at) - 30) < TOLERANCE_S


async def test_failed_delivery_receipt_falls_back_at_once(
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
        make_input(plan((Channel.SMS, 600), (Channel.EMAIL, 60)), ttl_s=3600),
    )
    await inbox_codes(store, workflow_id)
    await wait_settled(handle)
    state = await wait_state(
        handle, lambda s: bool(s.deliveries) and s.deliveries[0].provider_message_id is not None
    )
    sms = state.deliveries[0]
    assert sms.provider_message_id is not None
    await handle.signal(
        VerificationWorkflow.delivery_receipt,
        DeliveryReceiptInput(
            provider="sandbox",
            provider_message_id=sms.provider_message_id,
            status=DeliveryStatus.FAILED,
            error_code="30003",
        ),
    )
    # No time skipping while the test polls: the email can only come from the receipt.
    state = await wait_state(handle, lambda s: len(s.deliveries) == 2, "email fallback")
    failed, email = state.deliveries
    assert failed.status is DeliveryStatus.FAILED and failed.error_type == "30003"
    assert email.channel is Channel.EMAIL and state.current_step == 1
    assert seconds(email.started_at - failed.updated_at) < 1
    assert seconds(email.started_at - failed.started_at) < 60  # far before the 600 s timer
    codes = await inbox_codes(store, workflow_id, count=2)
    assert codes[0] == codes[1]
    await cancel_and_wait(handle)


async def test_receipt_for_another_step_does_not_move_the_plan(
    ts_env: WorkflowEnvironment,
    sandbox_worker: Worker,
    store: Store,
    workflow_id: str,
    task_queue: str,
) -> None:
    """A failed receipt for an unknown message id is buffered, not applied to the current step."""
    handle = await start(
        ts_env.client,
        workflow_id,
        task_queue,
        make_input(plan((Channel.SMS, 600), (Channel.EMAIL, 60)), ttl_s=3600),
    )
    await inbox_codes(store, workflow_id)
    await wait_settled(handle)
    await handle.signal(
        VerificationWorkflow.delivery_receipt,
        DeliveryReceiptInput(
            provider="sandbox", provider_message_id="sbx_unknown", status=DeliveryStatus.FAILED
        ),
    )
    state = await handle.query(VerificationWorkflow.state)
    assert state.current_step == 0 and len(state.deliveries) == 1
    assert state.deliveries[0].status is DeliveryStatus.DELIVERED
    await cancel_and_wait(handle)


async def test_failed_receipt_that_overtakes_the_send_result_still_falls_back(
    ts_env: WorkflowEnvironment, workflow_id: str, task_queue: str
) -> None:
    """A receipt for a message whose send has not returned yet is applied when it does."""
    release = asyncio.Event()

    async def slow_sms(input: DeliverInput, _attempt: int) -> None:
        if input.channel is Channel.SMS:
            await release.wait()

    fake = FakeDeliver(slow_sms)

    async def sms_started() -> bool:
        return bool(fake.calls)

    async with fake_worker(ts_env.client, task_queue, fake):
        handle = await start(
            ts_env.client,
            workflow_id,
            task_queue,
            make_input(plan((Channel.SMS, 600), (Channel.EMAIL, 60)), ttl_s=3600),
        )
        await wait_for(sms_started, what="the sms send")
        await handle.signal(
            VerificationWorkflow.delivery_receipt,
            DeliveryReceiptInput(
                provider="fake",
                provider_message_id=f"fake-{fake.calls[0].activity_id}",
                status=DeliveryStatus.FAILED,
                error_code="undelivered",
            ),
        )
        release.set()
        state = await wait_state(handle, lambda s: len(s.deliveries) == 2, "email fallback")
        await cancel_and_wait(handle)

    sms, email = state.deliveries
    assert sms.status is DeliveryStatus.FAILED and sms.error_type == "undelivered"
    assert email.channel is Channel.EMAIL and state.current_step == 1
    assert seconds(email.started_at - sms.started_at) < 60
