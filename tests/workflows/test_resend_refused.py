"""A resend the delivery gate refuses keeps the verification; failover counts one send.

Real activities (sandbox or scripted live providers) behind the real delivery gate and
the store limiter, on the time-skipping server.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.verification import VerificationActivities
from otp.domain import (
    Channel,
    ChannelStep,
    DeliveryKind,
    DeliveryStatus,
    ErrorType,
    Mode,
    ScopedInput,
    Status,
    VerificationState,
)
from otp.domain.destinations import number_prefix
from otp.risk.conversion_monitor import DeliveryGate
from otp.risk.limits import Limiter
from otp.risk.limits.store import StoreLimiter
from otp.risk.policy import Rate, RiskSettings, send_hits
from otp.store import Store
from otp.store import risk_blocks as blocks
from otp.store.applications import create_application
from otp.store.risk_blocks import BlockScope
from providers.base import OutboundMessage, PermanentDeliveryError, SendReceipt
from providers.sandbox import SandboxProvider
from tests.conftest import TEST_SECRETS
from tests.helpers.workflows import (
    APP,
    FIXED_NONCE,
    PHONE,
    RECORDED,
    SCOPE,
    check_input,
    digest,
    fixed_code,
    inbox_codes,
    make_input,
    plan,
    start,
    wait_settled,
)
from workflows.verification import VerificationWorkflow

Handle = WorkflowHandle[VerificationWorkflow, VerificationState]


async def _refusal(handle: Handle) -> ApplicationError:
    try:
        await handle.execute_update(VerificationWorkflow.resend, SCOPE)
    except WorkflowUpdateFailedError as exc:
        assert isinstance(exc.cause, ApplicationError)
        return exc.cause
    raise AssertionError("the resend was not refused")


async def test_a_resend_over_the_destination_limit_keeps_the_verification_and_its_code(
    ts_env: WorkflowEnvironment,
    workflow_id: str,
    task_queue: str,
    store: Store,
    sandbox_worker: Worker,
) -> None:
    await create_application(
        store,
        name="Limited",
        application_id=APP,
        risk=RiskSettings(per_destination=Rate(limit=1, window_s=600)),
    )
    handle = await start(
        ts_env.client,
        workflow_id,
        task_queue,
        make_input(plan((Channel.SMS, 300)), resend_cooldown_s=0),
    )
    before = await wait_settled(handle)
    (code,) = await inbox_codes(store, workflow_id)

    refused = await _refusal(handle)
    assert refused.type == ErrorType.RESEND_REFUSED
    detail = refused.details[0]
    assert detail["code"] == "destination_limit" and detail["limit"] == "destination"
    assert 1 <= detail["retry_after_s"] <= 600
    assert PHONE not in str(refused.details) and code not in str(refused.details)

    state = await handle.query(VerificationWorkflow.state)
    assert state.status is Status.PENDING
    assert state.sends == before.sends == 1
    assert state.next_resend_at == before.next_resend_at
    assert state.attempts_used == 0 and state.current_step == 0
    # The refused try is on the record (failed, Blocked); nothing reached the inbox.
    first, refused_try = state.deliveries
    assert first.kind is DeliveryKind.STEP and first.status is not DeliveryStatus.FAILED
    assert (refused_try.kind, refused_try.status, refused_try.error_type) == (
        DeliveryKind.RESEND,
        DeliveryStatus.FAILED,
        ErrorType.BLOCKED,
    )
    assert len(await store.list_sandbox_messages(application_id=APP)) == 1

    approved = await handle.execute_update(
        VerificationWorkflow.check, check_input(workflow_id, code)
    )
    assert approved.status is Status.APPROVED and approved.valid
    assert (await handle.result()).status is Status.APPROVED


async def test_a_resend_to_a_blocked_prefix_keeps_the_verification(
    ts_env: WorkflowEnvironment,
    workflow_id: str,
    task_queue: str,
    store: Store,
    sandbox_worker: Worker,
) -> None:
    handle = await start(
        ts_env.client,
        workflow_id,
        task_queue,
        make_input(plan((Channel.SMS, 300)), resend_cooldown_s=0),
    )
    await wait_settled(handle)
    (code,) = await inbox_codes(store, workflow_id)
    await blocks.create_block(
        store,
        application_id=APP,
        mode=Mode.TEST.value,
        scope=BlockScope.PREFIX,
        value=number_prefix(PHONE) or "",
        reason="operator",
        automatic=False,
    )

    refused = await _refusal(handle)
    assert refused.type == ErrorType.RESEND_REFUSED
    assert refused.details[0]["code"] == "prefix_blocked"
    assert refused.details[0]["retry_after_s"] is None
    state = await handle.query(VerificationWorkflow.state)
    assert state.status is Status.PENDING and state.sends == 1

    approved = await handle.execute_update(
        VerificationWorkflow.check, check_input(workflow_id, code)
    )
    assert approved.status is Status.APPROVED


# ------------------------------------------------------------------- failover
@dataclass
class Scripted:
    """A live SMS provider that fails permanently, or sends."""

    name: str
    fails: bool
    sent: list[str] = field(default_factory=list)
    channels: frozenset[Channel] = frozenset({Channel.SMS})

    async def send(self, message: OutboundMessage) -> SendReceipt:
        self.sent.append(message.idempotency_key)
        if self.fails:
            raise PermanentDeliveryError("invalid_number")
        return SendReceipt(provider=self.name, message_id=f"{self.name}-1")


def _failover_worker(
    client: Client, task_queue: str, store: Store, limiter: Limiter, providers: list[Scripted]
) -> Worker:
    activities = VerificationActivities(
        code_secret=TEST_SECRETS.code_secret,
        sandbox=SandboxProvider(store),
        live_providers={},
        providers_by_name={p.name: p for p in providers},
        gate=DeliveryGate(store, limiter, secret=TEST_SECRETS.code_secret),
    )
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[VerificationWorkflow],
        activities=[activities.issue_code, activities.deliver, RECORDED.record],
    )


async def _destination_count(limiter: Limiter) -> int:
    """Sends charged to PHONE's per-destination limit (5 per 10 min by default)."""
    hits = send_hits(
        RiskSettings(),
        secret=TEST_SECRETS.code_secret,
        application_id=APP,
        mode=Mode.LIVE,
        step=ChannelStep(channel=Channel.SMS, to=PHONE),
    )
    (decision, *_) = await limiter.peek(hits[:1])
    return decision.limit.limit - decision.remaining - 1


@pytest.mark.parametrize("issued_by_api", [False, True])
async def test_failover_through_three_providers_charges_the_destination_limit_once(
    ts_env: WorkflowEnvironment,
    workflow_id: str,
    task_queue: str,
    store: Store,
    issued_by_api: bool,
) -> None:
    limiter = StoreLimiter(store)
    providers = [Scripted("p1", True), Scripted("p2", True), Scripted("p3", False)]
    step = ChannelStep(
        channel=Channel.SMS, to=PHONE, timeout_s=300, providers=[p.name for p in providers]
    )
    issued = (
        {"code_nonce": FIXED_NONCE, "code_digest": digest(workflow_id, fixed_code(workflow_id))}
        if issued_by_api
        else {}
    )
    handle = await start(
        ts_env.client,
        workflow_id,
        task_queue,
        make_input([step], mode=Mode.LIVE, resend_cooldown_s=0, **issued),
    )
    live = ScopedInput(application_id=APP, mode=Mode.LIVE)
    async with _failover_worker(ts_env.client, task_queue, store, limiter, providers):
        state = await wait_settled(handle, 3)
        assert [(d.provider, d.status) for d in state.deliveries] == [
            ("p1", DeliveryStatus.FAILED),
            ("p2", DeliveryStatus.FAILED),
            ("p3", DeliveryStatus.SENT),
        ]
        # The API charged the first delivery at create when it issued the code.
        assert await _destination_count(limiter) == (0 if issued_by_api else 1)

        # A resend fails over the same way, and is again one send.
        await handle.execute_update(VerificationWorkflow.resend, live)
        await wait_settled(handle, 6)
        assert await _destination_count(limiter) == (1 if issued_by_api else 2)
        await handle.execute_update(VerificationWorkflow.cancel, live)
        await handle.result()
    assert [len(p.sent) for p in providers] == [2, 2, 2]
