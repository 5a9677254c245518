"""Replay: the workflow code must reproduce committed and freshly recorded histories."""

from __future__ import annotations

import asyncio

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker
from temporalio.workflow import NondeterminismError

from otp.domain import (
    Channel,
    DeliverInput,
    DeliveryReceiptInput,
    DeliveryStatus,
    Status,
    VerificationInput,
    VerificationState,
)
from otp.security.codec import data_converter
from otp.security.codes import code_digest
from otp.store import Store
from tests.conftest import TEST_SECRETS
from tests.helpers.workflows import (
    FIXED_NONCE,
    RECORDED,
    SCOPE,
    FakeDeliver,
    check_input,
    fake_worker,
    fixed_code,
    inbox_codes,
    make_input,
    plan,
    start,
    transient,
    wait_for,
    wait_settled,
    wait_state,
    wrong_code,
)
from tests.histories.record import HISTORY_FILE, WORKFLOW_ID
from workflows.verification import VerificationWorkflow


def replayer(*workflows: type) -> Replayer:
    return Replayer(
        workflows=list(workflows) or [VerificationWorkflow],
        data_converter=data_converter(TEST_SECRETS),
    )


def committed_history() -> WorkflowHistory:
    return WorkflowHistory.from_json(WORKFLOW_ID, HISTORY_FILE.read_text())


async def test_committed_history_replays() -> None:
    history = committed_history()
    kinds = {e.event_type for e in history.events}
    assert len(history.events) > 20 and len(kinds) > 8  # the fallback + checks recording
    result = await replayer().replay_workflow(history)
    assert result.replay_failure is None


@workflow.defn(name="VerificationWorkflow", sandboxed=False)
class _ChangedWorkflow(VerificationWorkflow):
    """The workflow with an unpatched change: a timer before the code is issued."""

    @workflow.run
    async def run(self, input: VerificationInput) -> VerificationState:
        await workflow.sleep(1)
        return await super().run(input)


async def test_an_unpatched_change_fails_replay() -> None:
    """The replay test can fail: a command-changing edit is caught as nondeterminism."""
    with pytest.raises(NondeterminismError):
        await replayer(_ChangedWorkflow).replay_workflow(committed_history())


async def test_fresh_histories_replay(
    ts_env: WorkflowEnvironment,
    sandbox_worker: Worker,
    store: Store,
    workflow_id: str,
    task_queue: str,
) -> None:
    """A run through resend, a failed receipt, next-channel and cancel replays cleanly."""
    handle = await start(
        ts_env.client,
        workflow_id,
        task_queue,
        make_input(
            plan((Channel.SMS, 300), (Channel.WHATSAPP, 300), (Channel.EMAIL, 300)),
            resend_cooldown_s=30,
            ttl_s=3600,
        ),
    )
    (code,) = await inbox_codes(store, workflow_id)
    await wait_settled(handle)
    await ts_env.sleep(30)
    await handle.execute_update(VerificationWorkflow.resend, SCOPE)
    state = await handle.query(VerificationWorkflow.state)
    message_id = state.deliveries[-1].provider_message_id
    assert message_id is not None
    await handle.signal(
        VerificationWorkflow.delivery_receipt,
        DeliveryReceiptInput(
            provider="sandbox", provider_message_id=message_id, status=DeliveryStatus.FAILED
        ),
    )
    # Let the whatsapp send settle first: next_channel would cancel it, and the Java test
    # server mishandles a cancel that races the activity's completion (ACTIVITY_UNKNOWN).
    await wait_state(
        handle,
        lambda s: len(s.deliveries) == 3 and s.deliveries[2].status is not DeliveryStatus.SENDING,
    )
    await handle.execute_update(VerificationWorkflow.next_channel, SCOPE)
    await handle.execute_update(
        VerificationWorkflow.check, check_input(workflow_id, wrong_code(code))
    )
    await handle.execute_update(VerificationWorkflow.cancel, SCOPE)
    assert (await handle.result()).status is Status.CANCELED

    result = await replayer().replay_workflow(await handle.fetch_history())
    assert result.replay_failure is None


async def test_fresh_history_with_a_canceled_delivery_replays(
    dev_env: WorkflowEnvironment, workflow_id: str, task_queue: str
) -> None:
    """next_channel cancels a retrying delivery; the approval closes the workflow.

    On the dev server (see test_next_channel: the time-skipping server mishandles the cancel).
    """
    ts_env = dev_env

    async def sms_down(input: DeliverInput, _attempt: int) -> None:
        if input.channel is Channel.SMS:
            raise transient()

    fake = FakeDeliver(sms_down)

    async def tried() -> bool:
        return bool(fake.calls)

    async with fake_worker(ts_env.client, task_queue, fake):
        handle = await start(
            ts_env.client,
            workflow_id,
            task_queue,
            make_input(plan((Channel.SMS, 300), (Channel.EMAIL, 300)), ttl_s=3600),
        )
        await wait_for(tried, what="an sms attempt")
        await asyncio.wait_for(
            handle.execute_update(VerificationWorkflow.next_channel, SCOPE), timeout=10
        )
        await handle.execute_update(
            VerificationWorkflow.check, check_input(workflow_id, fixed_code(workflow_id))
        )
        assert (await handle.result()).status is Status.APPROVED

    result = await replayer().replay_workflow(await handle.fetch_history())
    assert result.replay_failure is None


async def test_fresh_history_with_a_delivery_settling_after_the_end_replays(
    dev_env: WorkflowEnvironment, workflow_id: str, task_queue: str
) -> None:
    """The code is approved while the send's answer is still on its way: the end is
    recorded at once, the delivery settles as sent, the run records again and closes."""
    answer = asyncio.Event()

    async def slow_answer(input: DeliverInput, _attempt: int) -> None:
        await answer.wait()

    fake = FakeDeliver(slow_answer)
    code = fixed_code(workflow_id)
    input = make_input(plan((Channel.SMS, 300), (Channel.EMAIL, 300))).model_copy(
        update={
            "code_nonce": FIXED_NONCE,
            "code_digest": code_digest(TEST_SECRETS.code_secret, workflow_id, code),
        }
    )

    async def sending() -> bool:
        return bool(fake.calls)

    async with fake_worker(dev_env.client, task_queue, fake):
        handle = await start(dev_env.client, workflow_id, task_queue, input)
        await wait_for(sending, what="the sms send")
        approved = await handle.execute_update(
            VerificationWorkflow.check, check_input(workflow_id, code)
        )
        assert approved.status is Status.APPROVED

        async def recorded() -> bool:
            return workflow_id in RECORDED.inputs

        await wait_for(recorded, what="the record written at the end")
        first = RECORDED.inputs[workflow_id].state
        assert first.status is Status.APPROVED
        assert [d.status for d in first.deliveries] == [DeliveryStatus.SENDING]
        answer.set()
        result = await handle.result()

    assert result.status is Status.APPROVED
    assert [(d.status, d.error_type) for d in result.deliveries] == [(DeliveryStatus.SENT, None)]
    last = RECORDED.inputs[workflow_id].state
    assert [d.status for d in last.deliveries] == [DeliveryStatus.SENT]
    assert len(fake.calls) == 1
    history = await handle.fetch_history()
    markers = [
        e.marker_recorded_event_attributes.marker_name
        for e in history.events
        if e.HasField("marker_recorded_event_attributes")
    ]
    assert "core_patch" in markers
    replayed = await replayer().replay_workflow(history)
    assert replayed.replay_failure is None
