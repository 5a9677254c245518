"""Checks, resend and cancel (Workflow Updates), on the time-skipping server unless a test
says otherwise; next_channel has its own module, test_next_channel.py."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.verification import verification_ended
from otp.domain import (
    Channel,
    CheckInput,
    CheckResult,
    DeliverInput,
    DeliveryKind,
    DeliveryStatus,
    ErrorType,
    Mode,
    ScopedInput,
    Status,
)
from otp.observability import search_attributes as sa
from otp.settings import Settings
from otp.store import Store
from tests.conftest import real_worker
from tests.helpers.workflows import (
    APP,
    SCOPE,
    FakeDeliver,
    check_input,
    digest,
    fake_worker,
    fixed_code,
    inbox_codes,
    make_input,
    plan,
    seconds,
    start,
    transient,
    wait_for,
    wait_settled,
    wait_state,
    wrong_code,
)
from workflows.verification import VerificationWorkflow


async def update_error(call: Awaitable[Any]) -> ApplicationError:
    """The ApplicationError an update failed with (validator rejection or handler failure)."""
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await call
    cause = info.value.cause
    assert isinstance(cause, ApplicationError), cause
    return cause


async def test_wrong_then_right_check_approves(
    ts_env: WorkflowEnvironment,
    sandbox_worker: Worker,
    store: Store,
    workflow_id: str,
    task_queue: str,
) -> None:
    handle = await start(ts_env.client, workflow_id, task_queue, make_input(max_attempts=5))
    (code,) = await inbox_codes(store, workflow_id)
    await wait_settled(handle)

    wrong = await handle.execute_update(
        VerificationWorkflow.check, check_input(workflow_id, wrong_code(code))
    )
    assert wrong == CheckResult(
        status=Status.PENDING, valid=False, attempts_remaining=4, attempts_used=1
    )
    # What the user typed is normalised before hashing: spaces and case do not matter.
    spaced = f"{code[:3]} {code[3:]}"
    right = await handle.execute_update(
        VerificationWorkflow.check, check_input(workflow_id, spaced)
    )
    assert right == CheckResult(
        status=Status.APPROVED, valid=True, attempts_remaining=3, attempts_used=2
    )

    result = await handle.result()
    assert result.status is Status.APPROVED and result.attempts_used == 2
    assert result.finished_at is not None
    assert seconds(result.finished_at - result.created_at) < 30  # before any fallback timer
    assert len(result.deliveries) == 1


async def test_max_attempts_then_check_is_refused_as_finished(
    ts_env: WorkflowEnvironment, workflow_id: str, task_queue: str
) -> None:
    """Exhaustion, and a check on the finished verification names the terminal status.

    A resend held in flight keeps the workflow open after it turns terminal (it completes
    only once every handler has finished), so the late check reaches the workflow.
    """
    release = asyncio.Event()

    async def hold_resend(input: DeliverInput, _attempt: int) -> None:
        if input.kind is DeliveryKind.RESEND:
            await release.wait()

    fake = FakeDeliver(hold_resend)
    async with fake_worker(ts_env.client, task_queue, fake):
        handle = await start(
            ts_env.client,
            workflow_id,
            task_queue,
            make_input(max_attempts=3, resend_cooldown_s=0),
        )
        await wait_state(
            handle,
            lambda s: bool(s.deliveries) and s.deliveries[0].status is DeliveryStatus.SENT,
        )
        code = fixed_code(workflow_id)
        resend = await handle.start_update(
            VerificationWorkflow.resend, SCOPE, wait_for_stage=WorkflowUpdateStage.ACCEPTED
        )

        results = [
            await handle.execute_update(
                VerificationWorkflow.check, check_input(workflow_id, wrong_code(code))
            )
            for _ in range(3)
        ]
        assert [(r.status, r.valid, r.attempts_remaining) for r in results] == [
            (Status.PENDING, False, 2),
            (Status.PENDING, False, 1),
            (Status.MAX_ATTEMPTS_REACHED, False, 0),
        ]

        # Terminal, but still open while the resend handler runs.
        assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING
        err = await update_error(
            handle.execute_update(VerificationWorkflow.check, check_input(workflow_id, code))
        )
        assert err.type == ErrorType.FINISHED
        assert err.details[0]["status"] == Status.MAX_ATTEMPTS_REACHED.value
        assert err.non_retryable

        release.set()
        resent = await resend.result()
        assert resent.delivery.kind is DeliveryKind.RESEND
        assert resent.delivery.status is DeliveryStatus.SENT
        result = await handle.result()

    assert result.status is Status.MAX_ATTEMPTS_REACHED
    assert result.attempts_used == 3 and result.attempts_remaining == 0
    assert [c.code for c in fake.calls] == [code, code]  # the resend carried the same code
    # Once closed, the server itself refuses updates (the API maps this to "finished").
    with pytest.raises(RPCError) as closed:
        await handle.execute_update(VerificationWorkflow.check, check_input(workflow_id, code))
    assert closed.value.status is RPCStatusCode.NOT_FOUND


async def test_concurrent_correct_checks_approve_exactly_once(
    ts_env: WorkflowEnvironment, workflow_id: str, task_queue: str
) -> None:
    """Checks that all arrive before the code is issued interleave: one wins, the rest are told."""
    handle = await start(ts_env.client, workflow_id, task_queue, make_input())
    right = check_input(workflow_id, fixed_code(workflow_id))
    checks = [
        asyncio.create_task(handle.execute_update(VerificationWorkflow.check, right))
        for _ in range(5)
    ]
    await asyncio.sleep(0.5)  # every update is admitted before a worker picks the workflow up
    async with fake_worker(ts_env.client, task_queue, FakeDeliver()):
        outcomes = await asyncio.gather(*checks, return_exceptions=True)
        result = await handle.result()

    approved = [o for o in outcomes if isinstance(o, CheckResult)]
    refused = [o for o in outcomes if isinstance(o, WorkflowUpdateFailedError)]
    assert len(approved) == 1 and approved[0].status is Status.APPROVED and approved[0].valid
    assert len(refused) == 4, outcomes
    for err in refused:
        assert isinstance(err.cause, ApplicationError)
        assert err.cause.type == ErrorType.FINISHED
    assert result.status is Status.APPROVED and result.attempts_used == 1


async def test_update_sent_right_after_start_waits_for_the_code(
    ts_env: WorkflowEnvironment,
    settings: Settings,
    store: Store,
    workflow_id: str,
    task_queue: str,
) -> None:
    handle = await start(ts_env.client, workflow_id, task_queue, make_input())
    # Not a code of the numeric alphabet: it can never match.
    early = asyncio.create_task(
        handle.execute_update(VerificationWorkflow.check, check_input(workflow_id, "XXXXXX"))
    )
    await asyncio.sleep(0.3)  # the update reaches the workflow in its very first task
    async with real_worker(ts_env.client, settings, store):
        first = await early
        assert first == CheckResult(
            status=Status.PENDING, valid=False, attempts_remaining=4, attempts_used=1
        )
        (code,) = await inbox_codes(store, workflow_id)
        await wait_settled(handle)
        second = await handle.execute_update(
            VerificationWorkflow.check, check_input(workflow_id, code)
        )
        assert second.status is Status.APPROVED
        result = await handle.result()
    assert result.status is Status.APPROVED and result.attempts_used == 2
    # The early check was handled before the code was issued, yet nothing was lost.
    events = [e async for e in handle.fetch_history_events()]
    types = [e.event_type for e in events]
    first_accept = types.index(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)
    first_marker = types.index(EventType.EVENT_TYPE_MARKER_RECORDED)  # the issue_code result
    assert first_accept < first_marker


async def test_approval_while_a_step_is_retrying_closes_the_workflow_at_once(
    dev_env: WorkflowEnvironment, workflow_id: str, task_queue: str
) -> None:
    """An approval closes the workflow at once, even while the step's delivery is retrying.

    On the dev server (the time-skipping server mishandles the retrying activity's
    cancel), in real time: a workflow waiting for the delivery would only close after the
    sms step's 300 s budget. The delivery's retry asks the workflow first
    (`verification_ended`, as the production activity does) and stops, the provider
    knowing of no earlier send: nothing is sent after the approval and the workflow
    closes with the retry, not at the step's end.
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

        async def tried() -> bool:
            return bool(fake.calls)

        await wait_for(tried, what="first sms attempt")
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


async def test_resend_honours_cooldown_and_max_sends(
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
        make_input(plan((Channel.SMS, 300)), resend_cooldown_s=30, max_sends=3, ttl_s=3600),
    )
    (code,) = await inbox_codes(store, workflow_id)
    await wait_settled(handle)

    err = await update_error(handle.execute_update(VerificationWorkflow.resend, SCOPE))
    assert err.type == ErrorType.RESEND_COOLDOWN
    retry_after = err.details[0]["retry_after_s"]
    assert isinstance(retry_after, int) and 1 <= retry_after <= 30

    await ts_env.sleep(30)
    resent = await handle.execute_update(VerificationWorkflow.resend, SCOPE)
    assert resent.delivery.kind is DeliveryKind.RESEND
    assert resent.delivery.channel is Channel.SMS
    assert resent.delivery.status is DeliveryStatus.DELIVERED
    assert resent.sends_remaining == 1
    assert resent.next_resend_at - resent.delivery.started_at == timedelta(seconds=30)
    codes = await inbox_codes(store, workflow_id, count=2)
    assert codes == [code, code]  # the same code, delivered again

    err = await update_error(handle.execute_update(VerificationWorkflow.resend, SCOPE))
    assert err.type == ErrorType.RESEND_COOLDOWN

    await ts_env.sleep(30)
    last = await handle.execute_update(VerificationWorkflow.resend, SCOPE)
    assert last.sends_remaining == 0
    await ts_env.sleep(30)
    err = await update_error(handle.execute_update(VerificationWorkflow.resend, SCOPE))
    assert err.type == ErrorType.MAX_SENDS
    assert await inbox_codes(store, workflow_id, count=3) == [code] * 3

    state = await handle.query(VerificationWorkflow.state)
    assert state.sends == 3 and len(state.deliveries) == 3
    # Still verifiable with the one code.
    ok = await handle.execute_update(VerificationWorkflow.check, check_input(workflow_id, code))
    assert ok.status is Status.APPROVED
    await handle.result()


async def test_cancel_ends_the_verification(
    ts_env: WorkflowEnvironment,
    sandbox_worker: Worker,
    store: Store,
    workflow_id: str,
    task_queue: str,
) -> None:
    handle = await start(ts_env.client, workflow_id, task_queue, make_input())
    (code,) = await inbox_codes(store, workflow_id)
    await wait_settled(handle)

    other = ScopedInput(application_id="app_other", mode=Mode.TEST)
    err = await update_error(handle.execute_update(VerificationWorkflow.cancel, other))
    assert err.type == ErrorType.NOT_FOUND

    canceled = await handle.execute_update(VerificationWorkflow.cancel, SCOPE)
    assert canceled.status is Status.CANCELED
    result = await handle.result()
    assert result.status is Status.CANCELED
    assert result.reason and "canceled" in result.reason
    assert result.finished_at is not None and result.attempts_used == 0
    with pytest.raises(RPCError) as closed:
        await handle.execute_update(VerificationWorkflow.check, check_input(workflow_id, code))
    assert closed.value.status is RPCStatusCode.NOT_FOUND


async def test_check_validator_rejects_malformed_digest_without_history(
    ts_env: WorkflowEnvironment,
    sandbox_worker: Worker,
    store: Store,
    workflow_id: str,
    task_queue: str,
) -> None:
    handle = await start(ts_env.client, workflow_id, task_queue, make_input())
    (code,) = await inbox_codes(store, workflow_id)
    await wait_settled(handle)

    for bad in ("not-a-digest", "A" * 64, "0" * 63, digest(workflow_id, code) + "0"):
        err = await update_error(
            handle.execute_update(
                VerificationWorkflow.check,
                CheckInput(digest=bad, application_id=APP, mode=Mode.TEST),
            )
        )
        assert err.type == ErrorType.INVALID_INPUT

    state = await handle.query(VerificationWorkflow.state)
    assert state.attempts_used == 0 and state.status is Status.PENDING

    def accepted(events: list[Any]) -> int:
        return sum(
            e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED for e in events
        )

    assert accepted([e async for e in handle.fetch_history_events()]) == 0
    ok = await handle.execute_update(VerificationWorkflow.check, check_input(workflow_id, code))
    assert ok.status is Status.APPROVED
    await handle.result()
    assert accepted([e async for e in handle.fetch_history_events()]) == 1


async def test_wrong_scope_looks_like_not_found(
    ts_env: WorkflowEnvironment,
    sandbox_worker: Worker,
    store: Store,
    workflow_id: str,
    task_queue: str,
) -> None:
    handle = await start(ts_env.client, workflow_id, task_queue, make_input())
    (code,) = await inbox_codes(store, workflow_id)
    await wait_settled(handle)

    for scope in ({"application_id": "app_other"}, {"mode": Mode.LIVE}):
        err = await update_error(
            handle.execute_update(
                VerificationWorkflow.check, check_input(workflow_id, code, **scope)
            )
        )
        assert err.type == ErrorType.NOT_FOUND
        scoped = ScopedInput.model_validate({"application_id": APP, "mode": Mode.TEST, **scope})
        for update in (
            VerificationWorkflow.resend,
            VerificationWorkflow.next_channel,
            VerificationWorkflow.cancel,
        ):
            err = await update_error(handle.execute_update(update, scoped))
            assert err.type == ErrorType.NOT_FOUND

    state = await handle.query(VerificationWorkflow.state)
    assert state.status is Status.PENDING and state.attempts_used == 0
    assert state.current_step == 0 and state.sends == 1
    ok = await handle.execute_update(VerificationWorkflow.check, check_input(workflow_id, code))
    assert ok.status is Status.APPROVED
    await handle.result()
