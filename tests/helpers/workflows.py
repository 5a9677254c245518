"""Helpers for workflow tests: inputs, starting, reading the sandbox inbox, fake activities."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from otp.domain import (
    ACTIVITY_DELIVER,
    ACTIVITY_ISSUE_CODE,
    ACTIVITY_RECORD,
    Channel,
    ChannelStep,
    CheckInput,
    CodeType,
    DeliverInput,
    DeliverResult,
    DeliveryStatus,
    ErrorType,
    IssueCodeInput,
    IssueCodeResult,
    Mode,
    RecordVerificationInput,
    RecordVerificationResult,
    ScopedInput,
    VerificationInput,
    VerificationState,
)
from otp.security.codes import code_digest, derive_code
from otp.store import Store
from tests.conftest import TEST_SECRETS
from workflows.verification import VerificationWorkflow

APP = "app_test"
PHONE = "+14155552671"
EMAIL = "alice@example.com"
SCOPE = ScopedInput(application_id=APP, mode=Mode.TEST)

_CODE_RE = re.compile(r"code is ([0-9A-Z]+)\.")


def plan(*steps: tuple[Channel, int]) -> list[ChannelStep]:
    """A channel plan; phone channels go to PHONE, email to EMAIL."""
    return [
        ChannelStep(channel=ch, to=EMAIL if ch is Channel.EMAIL else PHONE, timeout_s=timeout)
        for ch, timeout in steps
    ]


def make_input(channels: list[ChannelStep] | None = None, **overrides: object) -> VerificationInput:
    data: dict[str, object] = {
        "application_id": APP,
        "mode": Mode.TEST,
        "channels": channels or plan((Channel.SMS, 30), (Channel.EMAIL, 60)),
    }
    data.update(overrides)
    return VerificationInput.model_validate(data)


async def start(
    client: Client, workflow_id: str, task_queue: str, input: VerificationInput
) -> WorkflowHandle[VerificationWorkflow, VerificationState]:
    return await client.start_workflow(
        VerificationWorkflow.run, input, id=workflow_id, task_queue=task_queue
    )


def digest(workflow_id: str, code: str) -> str:
    return code_digest(TEST_SECRETS.code_secret, workflow_id, code)


def check_input(workflow_id: str, code: str, **overrides: object) -> CheckInput:
    data: dict[str, object] = {
        "digest": digest(workflow_id, code),
        "application_id": APP,
        "mode": Mode.TEST,
    }
    data.update(overrides)
    return CheckInput.model_validate(data)


def code_in(body: str) -> str:
    match = _CODE_RE.search(body)
    assert match, "no code in the sandbox message"
    return match.group(1)


def wrong_code(code: str) -> str:
    """A code of the same shape that is not `code`."""
    first = "3" if code[0] != "3" else "4"
    return first + code[1:]


async def wait_for(
    predicate: Callable[[], Awaitable[bool]], *, timeout: float = 10.0, what: str = "condition"
) -> None:
    """Poll in real time (the time-skipping clock does not skip while the test polls)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def inbox_codes(store: Store, workflow_id: str, count: int = 1) -> list[str]:
    """Wait until the sandbox inbox holds `count` messages for the verification; oldest first."""
    messages: list[str] = []

    async def enough() -> bool:
        rows = await store.list_sandbox_messages(application_id=APP, verification_id=workflow_id)
        messages[:] = [code_in(r.body) for r in reversed(rows)]
        return len(rows) >= count

    await wait_for(enough, what=f"{count} sandbox message(s)")
    return messages


async def wait_settled(
    handle: WorkflowHandle[VerificationWorkflow, VerificationState], count: int = 1
) -> VerificationState:
    """Wait until `count` deliveries exist and none is still sending.

    The sandbox row is written before the deliver activity returns. A check, cancel or
    next_channel in that gap makes the workflow cancel the in-flight delivery, and the
    Java time-skipping server answers a cancel racing a completion with ACTIVITY_UNKNOWN,
    after which it stops skipping time for the whole session.
    """
    return await wait_state(
        handle,
        lambda s: (
            len(s.deliveries) >= count
            and all(d.status is not DeliveryStatus.SENDING for d in s.deliveries)
        ),
        f"{count} settled deliveries",
    )


async def wait_state(
    handle: WorkflowHandle[VerificationWorkflow, VerificationState],
    predicate: Callable[[VerificationState], bool],
    what: str = "state",
) -> VerificationState:
    found: list[VerificationState] = []

    async def ok() -> bool:
        state = await handle.query(VerificationWorkflow.state)
        found[:] = [state]
        return predicate(state)

    await wait_for(ok, what=what)
    return found[0]


async def cancel_and_wait(
    handle: WorkflowHandle[VerificationWorkflow, VerificationState],
) -> VerificationState:
    """End a test's verification gracefully (needs its worker).

    Not `terminate`: on the Java time-skipping server, terminating a workflow while one of
    its tasks is in flight can leave time skipping locked for the rest of the session, and
    every later `env.sleep` then hangs.
    """
    await handle.execute_update(VerificationWorkflow.cancel, SCOPE)
    return await handle.result()


def seconds(delta: timedelta) -> float:
    return delta.total_seconds()


# --------------------------------------------------------------------------- fakes
FIXED_NONCE = "00112233445566778899aabbccddeeff"


def fixed_code(workflow_id: str, length: int = 6, code_type: CodeType = CodeType.NUMERIC) -> str:
    return derive_code(TEST_SECRETS.code_secret, workflow_id, FIXED_NONCE, length, code_type)


@activity.defn(name=ACTIVITY_ISSUE_CODE)
async def fixed_issue_code(input: IssueCodeInput) -> IssueCodeResult:
    """issue_code with a known nonce, so a test knows the code before it is delivered."""
    code = derive_code(
        TEST_SECRETS.code_secret,
        input.verification_id,
        FIXED_NONCE,
        input.code_length,
        input.code_type,
    )
    return IssueCodeResult(
        nonce=FIXED_NONCE, digest=code_digest(TEST_SECRETS.code_secret, input.verification_id, code)
    )


@dataclass
class DeliverCall:
    channel: Channel
    kind: str
    attempt: int
    code: str
    activity_id: str = ""


Behaviour = Callable[[DeliverInput, int], Awaitable[None]]


@dataclass
class FakeDeliver:
    """A `deliver` activity whose outcome per call is decided by `behaviour` (raise to fail)."""

    behaviour: Behaviour | None = None
    calls: list[DeliverCall] = field(default_factory=list)

    @activity.defn(name=ACTIVITY_DELIVER)
    async def deliver(self, input: DeliverInput) -> DeliverResult:
        info = activity.info()
        code = derive_code(
            TEST_SECRETS.code_secret,
            input.verification_id,
            input.nonce,
            input.code_length,
            input.code_type,
        )
        self.calls.append(
            DeliverCall(input.channel, input.kind.value, info.attempt, code, info.activity_id)
        )
        if self.behaviour is not None:
            await self.behaviour(input, info.attempt)
        return DeliverResult(
            provider="fake",
            provider_message_id=f"fake-{info.activity_id}",
            status=DeliveryStatus.SENT,
        )


def permanent(reason: str = "bad_address") -> ApplicationError:
    return ApplicationError(
        f"delivery failed: {reason}", type=ErrorType.PERMANENT_DELIVERY, non_retryable=True
    )


def transient(reason: str = "timeout") -> ApplicationError:
    return ApplicationError(f"delivery failed: {reason}", type=ErrorType.TRANSIENT_DELIVERY)


class RecordedVerifications:
    """The recording activity for workflow tests: keeps what the workflow asked to write,
    by verification id (the real one, against the store, is tested with the dev server)."""

    def __init__(self) -> None:
        self.inputs: dict[str, RecordVerificationInput] = {}

    @activity.defn(name=ACTIVITY_RECORD)
    async def record(self, input: RecordVerificationInput) -> RecordVerificationResult:
        self.inputs[input.verification_id] = input
        return RecordVerificationResult(events_written=len(input.entries), webhooks_started=0)


RECORDED = RecordedVerifications()


def fake_worker(
    client: Client,
    task_queue: str,
    deliver: FakeDeliver,
    *,
    issue: Callable[..., Awaitable[IssueCodeResult]] | None = None,
    max_cached_workflows: int = 1000,
) -> Worker:
    """A worker with the real workflow, a fake `deliver` and the given (or fixed-nonce) issue_code.

    `max_cached_workflows=0` turns sticky execution off, for tests that stop a worker and
    start another: the time-skipping server keeps routing tasks to a stopped worker's
    sticky queue otherwise.
    """
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[VerificationWorkflow],
        activities=[issue or fixed_issue_code, deliver.deliver, RECORDED.record],
        max_cached_workflows=max_cached_workflows,
    )
