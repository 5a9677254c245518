"""Replay: the workflow code must reproduce committed and freshly recorded histories."""

from __future__ import annotations

import asyncio

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker
from temporalio.workflow import NondeterminismError

from otp.codec import data_converter
from otp.domain import (
    Channel,
    DeliverInput,
    DeliveryReceiptInput,
    DeliveryStatus,
    Status,
    VerificationInput,
    VerificationState,
)
from otp.store import Store
from tests.conftest import TEST_SECRETS
from tests.histories.record import HISTORY_FILE, WORKFLOW_ID
from tests.workflows.helpers import (
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

    On the dev server (see test_regressions: the time-skipping server mishandles the cancel).
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
