"""The event log: the entries EventLog notes (no server), and the batch the workflow
writes when it ends (time-skipping server, real recording activity against the SQLite
store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio.client import WorkflowUpdateStage
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from otp.domain import (
    Channel,
    CodeType,
    DeliveryAttempt,
    DeliveryKind,
    DeliveryStatus,
    EventType,
    Status,
    VerificationInput,
)
from otp.security.codes import code_digest, derive_code
from otp.store import Store
from otp.store import records as store_records
from tests.conftest import TEST_SECRETS
from tests.helpers.workflows import (
    APP,
    FIXED_NONCE,
    RECORDED,
    FakeDeliver,
    check_input,
    fake_worker,
    make_input,
    plan,
    start,
    wrong_code,
)
from workflows.event_log import EventLog
from workflows.verification import VerificationWorkflow

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def issued(workflow_id: str, input: VerificationInput) -> VerificationInput:
    """The input as the API starts it: the code issued up front (nonce + digest)."""
    code = derive_code(TEST_SECRETS.code_secret, workflow_id, FIXED_NONCE, 6, CodeType.NUMERIC)
    return input.model_copy(
        update={
            "code_nonce": FIXED_NONCE,
            "code_digest": code_digest(TEST_SECRETS.code_secret, workflow_id, code),
        }
    )


async def test_fallback_then_approval_is_logged_in_order(
    ts_env: WorkflowEnvironment,
    sandbox_worker: Worker,
    store: Store,
    workflow_id: str,
    task_queue: str,
) -> None:
    input = issued(
        workflow_id, make_input(plan((Channel.SMS, 30), (Channel.EMAIL, 60)), country="US")
    )
    handle = await start(ts_env.client, workflow_id, task_queue, input)
    code = derive_code(TEST_SECRETS.code_secret, workflow_id, FIXED_NONCE, 6, CodeType.NUMERIC)
    await ts_env.sleep(45)  # past the sms step's 30 s: the email step is delivered
    wrong = await handle.start_update(
        VerificationWorkflow.check,
        check_input(workflow_id, wrong_code(code)),
        wait_for_stage=WorkflowUpdateStage.COMPLETED,
    )
    assert not (await wrong.result()).valid
    await handle.execute_update(VerificationWorkflow.check, check_input(workflow_id, code))
    result = await handle.result()
    assert result.status is Status.APPROVED

    events = await store_records.list_events(
        store, verification_id=workflow_id, application_id=APP, mode="test"
    )
    types = [e.type for e in events]
    # On the time-skipping server the workflow's clock runs ahead of the activity's (real)
    # one, so only entries written by the workflow are ordered among themselves here.
    assert types.count("created") == 1 and types[-1] == "approved"
    assert types.index("fallback") > types.index("sent")
    assert types.count("send_attempted") == 2 and types.count("check_failed") == 1
    fallback = next(e for e in events if e.type == "fallback")
    assert fallback.channel == "email" and fallback.to_masked == "a***@example.com"
    record = await store_records.get_record(
        store, verification_id=workflow_id, application_id=APP, mode="test"
    )
    assert record is not None and record.final and record.status == "approved"
    assert record.fallbacks == 1 and record.wrong_checks == 1 and record.attempts_used == 2
    assert record.time_to_verify_ms is not None and record.time_to_verify_ms >= 45_000
    assert record.country == "US" and record.channel == "email"


async def test_expiry_is_logged_with_its_reason(
    ts_env: WorkflowEnvironment, workflow_id: str, task_queue: str
) -> None:
    deliver = FakeDeliver()
    async with fake_worker(ts_env.client, task_queue, deliver):
        handle = await start(
            ts_env.client,
            workflow_id,
            task_queue,
            issued(workflow_id, make_input(plan((Channel.SMS, 30)), ttl_s=120)),
        )
        assert (await handle.result()).status is Status.EXPIRED
    recorded = RECORDED.inputs[workflow_id]
    assert recorded.final and recorded.state.status is Status.EXPIRED
    types = [e.type.value for e in recorded.entries]
    assert types == ["created", "send_attempted", "sent", "expired"]
    assert recorded.entries[-1].reason


async def test_runs_that_issue_their_code_by_activity_write_no_batch(
    ts_env: WorkflowEnvironment, workflow_id: str, task_queue: str
) -> None:
    """The first release's runs (no code in the input) must replay without the batch."""
    deliver = FakeDeliver()
    async with fake_worker(ts_env.client, task_queue, deliver):
        handle = await start(
            ts_env.client, workflow_id, task_queue, make_input(plan((Channel.SMS, 30)), ttl_s=60)
        )
        await handle.result()
    assert workflow_id not in RECORDED.inputs


# --------------------------------------------------------------------- EventLog, no server
def resend_attempt() -> DeliveryAttempt:
    return DeliveryAttempt(
        step_index=1,
        kind=DeliveryKind.RESEND,
        channel=Channel.EMAIL,
        provider="smtp",
        reference="ver_1:run:4",
        started_at=T0,
        updated_at=T0,
    )


def test_the_log_starts_with_the_creation_on_the_first_step() -> None:
    log = EventLog(T0, Channel.SMS)
    [created] = log.entries
    assert (created.key, created.type, created.occurred_at) == ("created", EventType.CREATED, T0)
    assert (created.channel, created.step_index) == (Channel.SMS, 0)
    assert EventLog(T0, None).entries[0].channel is None  # an empty plan


def test_a_deliverys_entries_are_keyed_by_its_delivery_key() -> None:
    log = EventLog(T0, Channel.SMS)
    attempt = resend_attempt()
    log.send_attempted(attempt, T0)
    attempt.provider_message_id = ""  # a provider that answers without an id
    log.sent(attempt, T0 + timedelta(seconds=1))
    attempt.error_type = "30003"
    log.send_failed(attempt, T0 + timedelta(seconds=2))
    attempted, sent, failed = log.entries[1:]
    assert [e.key for e in log.entries[1:]] == [
        "send:ver_1:run:4",
        "sent:ver_1:run:4",
        "failed:ver_1:run:4",
    ]
    assert (attempted.type, attempted.reason, attempted.provider) == (
        EventType.SEND_ATTEMPTED,
        "resend",
        "smtp",
    )
    assert (attempted.channel, attempted.step_index) == (Channel.EMAIL, 1)
    assert sent.type is EventType.SENT and sent.provider_message_id is None
    assert (failed.type, failed.reason, failed.provider_message_id) == (
        EventType.FAILED,
        "30003",
        None,
    )
    assert failed.occurred_at == T0 + timedelta(seconds=2)


def test_only_failed_and_delivered_receipts_are_noted() -> None:
    log = EventLog(T0, Channel.SMS)
    attempt = resend_attempt()
    attempt.provider_message_id = "msg-1"
    log.receipt(attempt, DeliveryStatus.SENT, T0)
    log.receipt(attempt, DeliveryStatus.SENDING, T0)
    assert len(log.entries) == 1
    log.receipt(attempt, DeliveryStatus.DELIVERED, T0)
    attempt.error_type = "receipt_failed"
    log.receipt(attempt, DeliveryStatus.FAILED, T0)
    delivered, failed = log.entries[1:]
    assert (delivered.key, delivered.type, delivered.provider_message_id) == (
        "delivered:ver_1:run:4",
        EventType.DELIVERED,
        "msg-1",
    )
    assert (failed.key, failed.type, failed.reason, failed.provider_message_id) == (
        "failed:ver_1:run:4",
        EventType.FAILED,
        "receipt_failed",
        "msg-1",
    )


def test_fallbacks_checks_and_the_end_are_noted_with_their_reasons() -> None:
    log = EventLog(T0, Channel.SMS)
    log.fallback(1, Channel.EMAIL, "delivery failed", T0)
    log.check_failed(1, T0)
    log.check_failed(2, T0)
    log.terminal(Status.MAX_ATTEMPTS_REACHED, 1, Channel.EMAIL, "too many", T0)
    keys = [(e.key, e.type) for e in log.entries[1:]]
    assert keys == [
        ("fallback:1", EventType.FALLBACK),
        ("check:1", EventType.CHECK_FAILED),
        ("check:2", EventType.CHECK_FAILED),
        ("terminal", EventType.MAX_ATTEMPTS_REACHED),
    ]
    fallback, check, _, end = log.entries[1:]
    assert (fallback.channel, fallback.step_index, fallback.reason) == (
        Channel.EMAIL,
        1,
        "delivery failed",
    )
    assert check.reason == "incorrect code"
    assert (end.channel, end.step_index, end.reason) == (Channel.EMAIL, 1, "too many")
