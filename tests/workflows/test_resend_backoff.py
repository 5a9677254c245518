"""The resend cooldown grows with each resend; only a run's very first send is precounted."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from otp.domain import Channel, DeliverInput, ErrorType, Status
from tests.helpers.workflows import (
    FIXED_NONCE,
    SCOPE,
    FakeDeliver,
    check_input,
    digest,
    fake_worker,
    fixed_code,
    make_input,
    plan,
    start,
    wait_settled,
)
from workflows.verification import VerificationWorkflow


async def _refused_for(handle: object) -> int:
    """The retry_after_s of a resend refused for its cooldown."""
    try:
        await handle.execute_update(VerificationWorkflow.resend, SCOPE)  # type: ignore[attr-defined]
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        assert isinstance(cause, ApplicationError) and cause.type == ErrorType.RESEND_COOLDOWN
        retry_after = cause.details[0]["retry_after_s"]
        assert isinstance(retry_after, int)
        return retry_after
    raise AssertionError("the resend was not refused")


async def test_the_cooldown_doubles_after_each_resend(
    ts_env: WorkflowEnvironment, workflow_id: str, task_queue: str
) -> None:
    deliver = FakeDeliver()
    async with fake_worker(ts_env.client, task_queue, deliver):
        handle = await start(
            ts_env.client,
            workflow_id,
            task_queue,
            make_input(
                plan((Channel.SMS, 3600)),
                resend_cooldown_s=30,
                resend_backoff=2.0,
                max_sends=5,
                ttl_s=3600,
            ),
        )
        state = await wait_settled(handle)
        assert state.next_resend_at is not None
        assert state.next_resend_at - state.deliveries[0].started_at == timedelta(seconds=30)

        gaps = []
        for expected in (30, 60, 120):
            assert 1 <= await _refused_for(handle) <= expected
            await ts_env.sleep(expected)
            resent = await handle.execute_update(VerificationWorkflow.resend, SCOPE)
            gaps.append(resent.next_resend_at - resent.delivery.started_at)
        assert gaps == [timedelta(seconds=s) for s in (60, 120, 240)]
        # Waiting the base cooldown is no longer enough.
        await ts_env.sleep(30)
        assert 200 <= await _refused_for(handle) <= 210

        ok = await handle.execute_update(
            VerificationWorkflow.check, check_input(workflow_id, deliver.calls[0].code)
        )
        assert ok.status is Status.APPROVED
        await handle.result()


async def test_the_cooldown_is_capped_at_an_hour(
    ts_env: WorkflowEnvironment, workflow_id: str, task_queue: str
) -> None:
    deliver = FakeDeliver()
    async with fake_worker(ts_env.client, task_queue, deliver):
        handle = await start(
            ts_env.client,
            workflow_id,
            task_queue,
            make_input(
                plan((Channel.SMS, 3600)),
                resend_cooldown_s=600,
                resend_backoff=10.0,
                ttl_s=86400,
            ),
        )
        await wait_settled(handle)
        await ts_env.sleep(600)
        resent = await handle.execute_update(VerificationWorkflow.resend, SCOPE)
        assert resent.next_resend_at - resent.delivery.started_at == timedelta(hours=1)
        await handle.execute_update(VerificationWorkflow.cancel, SCOPE)
        await handle.result()


async def test_only_the_first_send_of_an_api_issued_code_is_precounted(
    ts_env: WorkflowEnvironment, workflow_id: str, task_queue: str
) -> None:
    seen: list[tuple[str, bool]] = []

    async def note(input: DeliverInput, attempt: int) -> None:
        seen.append((f"{input.channel.value}:{input.kind.value}", input.precounted))
        if input.channel is Channel.SMS and input.kind.value == "step":
            raise ApplicationError("no", type=ErrorType.PERMANENT_DELIVERY, non_retryable=True)

    deliver = FakeDeliver(note)
    async with fake_worker(ts_env.client, task_queue, deliver):
        handle = await start(
            ts_env.client,
            workflow_id,
            task_queue,
            make_input(
                plan((Channel.SMS, 60), (Channel.EMAIL, 600)),
                resend_cooldown_s=5,
                code_nonce=FIXED_NONCE,
                code_digest=digest(workflow_id, fixed_code(workflow_id)),
            ),
        )
        await wait_settled(handle, count=2)  # the sms failed, the email fallback went out
        await ts_env.sleep(5)
        await handle.execute_update(VerificationWorkflow.resend, SCOPE)
        ok = await handle.execute_update(
            VerificationWorkflow.check, check_input(workflow_id, fixed_code(workflow_id))
        )
        assert ok.status is Status.APPROVED
        await handle.result()
    assert seen == [("sms:step", True), ("email:step", False), ("email:resend", False)]


async def test_a_run_that_issues_its_own_code_precounts_nothing(
    ts_env: WorkflowEnvironment, workflow_id: str, task_queue: str
) -> None:
    seen: list[bool] = []

    async def note(input: DeliverInput, attempt: int) -> None:
        seen.append(input.precounted)

    async with fake_worker(ts_env.client, task_queue, FakeDeliver(note)):
        handle = await start(ts_env.client, workflow_id, task_queue, make_input())
        await wait_settled(handle)
        await handle.execute_update(VerificationWorkflow.cancel, SCOPE)
        await handle.result()
    assert seen == [False]
