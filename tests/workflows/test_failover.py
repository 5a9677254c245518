"""Provider failover inside a step, delivery keys, receipts by reference, sandbox magic numbers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import activity
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from otp.domain import (
    ACTIVITY_DELIVER,
    Channel,
    ChannelStep,
    DeliverInput,
    DeliverResult,
    DeliveryKind,
    DeliveryReceiptInput,
    DeliveryStatus,
    ErrorType,
    VerificationState,
)
from providers.sandbox import MAGIC_INVALID, MAGIC_NO_RECEIPT, MAGIC_RECEIPT_FAILED
from tests.helpers.workflows import (
    EMAIL,
    PHONE,
    RECORDED,
    cancel_and_wait,
    fixed_issue_code,
    make_input,
    permanent,
    seconds,
    start,
    transient,
    wait_settled,
    wait_state,
)
from workflows.verification import VerificationWorkflow


@dataclass
class ProviderFake:
    """`deliver` whose outcome depends on the provider the workflow asked for."""

    failing: dict[str, str] = field(default_factory=dict)  # provider -> "permanent"/"transient"
    message_id: str | None = None  # None: "<provider>-<key>"; "": outcome unknown
    calls: list[tuple[str | None, int, str | None]] = field(default_factory=list)

    @activity.defn(name=ACTIVITY_DELIVER)
    async def deliver(self, input: DeliverInput) -> DeliverResult:
        info = activity.info()
        self.calls.append((input.provider, info.attempt, input.delivery_key))
        mode = self.failing.get(input.provider or "")
        if mode == "permanent":
            raise permanent("invalid_number")
        if mode == "transient":
            raise transient("http_503")
        mid = self.message_id if self.message_id is not None else f"{input.provider}-{info.attempt}"
        return DeliverResult(
            provider=input.provider or "default",
            provider_message_id=mid,
            status=DeliveryStatus.SENT,
        )


def worker(client: Client, task_queue: str, fake: ProviderFake) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[VerificationWorkflow],
        activities=[fixed_issue_code, fake.deliver, RECORDED.record],
    )


def two_provider_plan(timeout_s: int = 300) -> list[ChannelStep]:
    return [
        ChannelStep(channel=Channel.SMS, to=PHONE, timeout_s=timeout_s, providers=["p1", "p2"]),
        ChannelStep(channel=Channel.EMAIL, to=EMAIL, timeout_s=timeout_s),
    ]


def step_attempts(state: VerificationState, index: int) -> list[tuple[str | None, DeliveryStatus]]:
    return [(d.provider, d.status) for d in state.deliveries if d.step_index == index]


async def test_permanent_failure_hands_over_to_the_next_provider_at_once(
    ts_env: WorkflowEnvironment, workflow_id: str, task_queue: str
) -> None:
    fake = ProviderFake(failing={"p1": "permanent"})
    handle = await start(ts_env.client, workflow_id, task_queue, make_input(two_provider_plan()))
    async with worker(ts_env.client, task_queue, fake):
        state = await wait_settled(handle, 2)
        await cancel_and_wait(handle)

    assert step_attempts(state, 0) == [("p1", DeliveryStatus.FAILED), ("p2", DeliveryStatus.SENT)]
    first, second = state.deliveries
    assert first.error_type == ErrorType.PERMANENT_DELIVERY
    assert seconds(second.started_at - first.started_at) < 1
    assert state.current_step == 0  # still the SMS step: the channel did not change
    assert state.sends == 1  # one send as far as limits go
    assert [c[0] for c in fake.calls] == ["p1", "p2"]


async def test_a_provider_that_keeps_failing_hands_over_after_its_attempts(
    ts_env: WorkflowEnvironment, workflow_id: str, task_queue: str
) -> None:
    fake = ProviderFake(failing={"p1": "transient"})
    handle = await start(
        ts_env.client,
        workflow_id,
        task_queue,
        make_input(two_provider_plan(), provider_max_attempts=3),
    )
    async with worker(ts_env.client, task_queue, fake):
        state = await wait_settled(handle, 2)
        await cancel_and_wait(handle)

    p1 = [c for c in fake.calls if c[0] == "p1"]
    assert [attempt for _, attempt, _ in p1] == [1, 2, 3]
    # Every retry of one delivery carries the same key; the next provider gets its own.
    assert len({key for _, _, key in p1}) == 1
    p2_key = next(key for provider, _, key in fake.calls if provider == "p2")
    assert p2_key != p1[0][2]
    assert step_attempts(state, 0) == [("p1", DeliveryStatus.FAILED), ("p2", DeliveryStatus.SENT)]
    assert state.deliveries[0].error_type == ErrorType.TRANSIENT_DELIVERY
    # Retries waited 1 s then 2 s: the hand-over came long before the 300 s step timer.
    handover = seconds(state.deliveries[1].started_at - state.deliveries[0].started_at)
    assert 2.5 <= handover < 10
    assert state.current_step == 0


async def test_when_every_provider_fails_the_plan_falls_back_to_the_next_channel(
    ts_env: WorkflowEnvironment, workflow_id: str, task_queue: str
) -> None:
    fake = ProviderFake(failing={"p1": "permanent", "p2": "permanent"})
    handle = await start(ts_env.client, workflow_id, task_queue, make_input(two_provider_plan()))
    async with worker(ts_env.client, task_queue, fake):
        state = await wait_settled(handle, 3)
        await cancel_and_wait(handle)

    assert step_attempts(state, 0) == [("p1", DeliveryStatus.FAILED), ("p2", DeliveryStatus.FAILED)]
    assert step_attempts(state, 1) == [("default", DeliveryStatus.SENT)]
    assert state.current_step == 1
    assert seconds(state.deliveries[2].started_at - state.deliveries[0].started_at) < 1


async def test_receipt_maps_by_reference_when_the_message_id_was_never_learned(
    ts_env: WorkflowEnvironment, workflow_id: str, task_queue: str
) -> None:
    """An unknown send outcome is recorded as sent without an id; its failed receipt, found
    by the delivery key the provider echoed, still falls back at once."""
    fake = ProviderFake(message_id="")
    handle = await start(ts_env.client, workflow_id, task_queue, make_input(two_provider_plan()))
    async with worker(ts_env.client, task_queue, fake):
        state = await wait_settled(handle, 1)
        first = state.deliveries[0]
        assert first.provider_message_id == "" and first.reference
        assert first.reference.startswith(f"{workflow_id}:")
        await handle.signal(
            VerificationWorkflow.delivery_receipt,
            DeliveryReceiptInput(
                provider="p1",
                provider_message_id="SM123",
                status=DeliveryStatus.FAILED,
                error_code="30003",
                reference=first.reference,
            ),
        )
        state = await wait_state(handle, lambda s: s.current_step == 1 and len(s.deliveries) == 2)
        await cancel_and_wait(handle)

    assert state.deliveries[0].status is DeliveryStatus.FAILED
    assert state.deliveries[0].provider_message_id == "SM123"
    assert state.deliveries[0].error_type == "30003"
    assert seconds(state.deliveries[1].started_at - state.deliveries[0].updated_at) < 1


# --- sandbox magic numbers, with the production activities and receipt path -----------
def magic_plan(number: str, timeout_s: int = 120) -> list[ChannelStep]:
    return [
        ChannelStep(channel=Channel.SMS, to=number, timeout_s=timeout_s),
        ChannelStep(channel=Channel.EMAIL, to=EMAIL, timeout_s=timeout_s),
    ]


async def test_sandbox_invalid_number_falls_back_at_once(
    ts_env: WorkflowEnvironment, sandbox_worker: Worker, workflow_id: str, task_queue: str
) -> None:
    handle = await start(
        ts_env.client, workflow_id, task_queue, make_input(magic_plan(MAGIC_INVALID))
    )
    state = await wait_settled(handle, 2)
    await cancel_and_wait(handle)
    sms, email = state.deliveries
    assert sms.status is DeliveryStatus.FAILED and sms.error_type == ErrorType.PERMANENT_DELIVERY
    assert email.channel is Channel.EMAIL and email.kind is DeliveryKind.STEP
    assert seconds(email.started_at - sms.started_at) < 1


async def test_sandbox_failed_receipt_falls_back_at_once(
    ts_env: WorkflowEnvironment, sandbox_worker: Worker, workflow_id: str, task_queue: str
) -> None:
    handle = await start(
        ts_env.client, workflow_id, task_queue, make_input(magic_plan(MAGIC_RECEIPT_FAILED))
    )
    state = await wait_state(
        handle,
        lambda s: len(s.deliveries) == 2 and s.deliveries[1].status is not DeliveryStatus.SENDING,
        "the fallback after the failed receipt",
    )
    await cancel_and_wait(handle)
    sms, email = state.deliveries
    assert sms.status is DeliveryStatus.FAILED and sms.error_type == "30003"
    assert email.channel is Channel.EMAIL
    assert seconds(email.started_at - sms.started_at) < 5  # not the 120 s step timer


async def test_sandbox_number_without_receipt_falls_back_on_the_timer(
    ts_env: WorkflowEnvironment, sandbox_worker: Worker, workflow_id: str, task_queue: str
) -> None:
    handle = await start(
        ts_env.client, workflow_id, task_queue, make_input(magic_plan(MAGIC_NO_RECEIPT, 120))
    )
    state = await wait_settled(handle, 1)
    assert state.deliveries[0].status is DeliveryStatus.SENT  # accepted, never confirmed
    await ts_env.sleep(timedelta(seconds=121))
    state = await wait_settled(handle, 2)
    await cancel_and_wait(handle)
    sms, email = state.deliveries
    assert sms.status is DeliveryStatus.SENT
    assert 119 <= seconds(email.started_at - sms.started_at) <= 122


async def test_a_receipt_that_overtakes_the_send_result_is_not_undone(
    ts_env: WorkflowEnvironment, workflow_id: str, task_queue: str
) -> None:
    """A failed receipt matched by reference while the send is still running stays: the
    send's own "sent" result does not overwrite it."""
    release = asyncio.Event()
    keys: list[str] = []

    @activity.defn(name=ACTIVITY_DELIVER)
    async def slow_deliver(input: DeliverInput) -> DeliverResult:
        keys.append(input.delivery_key or "")
        if len(keys) == 1:
            await release.wait()
        return DeliverResult(
            provider="p1", provider_message_id=f"m{len(keys)}", status=DeliveryStatus.SENT
        )

    handle = await start(ts_env.client, workflow_id, task_queue, make_input(two_provider_plan()))
    async with Worker(
        ts_env.client,
        task_queue=task_queue,
        workflows=[VerificationWorkflow],
        activities=[fixed_issue_code, slow_deliver, RECORDED.record],
    ):
        await wait_state(handle, lambda s: len(s.deliveries) == 1, "the first send")
        await handle.signal(
            VerificationWorkflow.delivery_receipt,
            DeliveryReceiptInput(
                provider="p1",
                provider_message_id="m1",
                status=DeliveryStatus.FAILED,
                error_code="30003",
                reference=keys[0],
            ),
        )
        release.set()
        state = await wait_settled(handle, 2)
        await cancel_and_wait(handle)

    first = state.deliveries[0]
    assert (first.status, first.error_type, first.provider_message_id) == (
        DeliveryStatus.FAILED,
        "30003",
        "m1",
    )
    assert state.current_step == 1
