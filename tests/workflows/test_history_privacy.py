"""The plaintext code is nowhere in a fetched history; destinations only as ciphertext."""

from __future__ import annotations

from collections.abc import Iterator

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from otp.domain import Channel, CodeType, Status
from otp.security.codec import ENCODING, codec_from_secrets
from otp.store import Store
from tests.conftest import TEST_SECRETS
from tests.helpers.workflows import (
    EMAIL,
    PHONE,
    check_input,
    inbox_codes,
    make_input,
    plan,
    start,
    wait_settled,
    wrong_code,
)
from workflows.verification import VerificationWorkflow


def payloads_in(message: Message) -> Iterator[Payload]:
    """Every Payload anywhere inside a protobuf message (lists and maps included)."""
    if isinstance(message, Payload):
        yield message
        return
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.is_repeated:
            if field.message_type.GetOptions().map_entry:
                items = list(value.values())
            else:
                items = list(value)
            for item in items:
                if isinstance(item, Message):
                    yield from payloads_in(item)
        else:
            yield from payloads_in(value)


async def test_code_and_destinations_never_appear_in_history(
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
        make_input(
            plan((Channel.SMS, 30), (Channel.EMAIL, 60)),
            code_type=CodeType.ALPHANUMERIC,
            code_length=10,
        ),
    )
    (code,) = await inbox_codes(store, workflow_id)
    await wait_settled(handle)
    assert len(code) == 10  # the sandbox (the simulated phone) does hold the code
    await handle.execute_update(
        VerificationWorkflow.check, check_input(workflow_id, wrong_code(code))
    )
    await handle.execute_update(VerificationWorkflow.check, check_input(workflow_id, code))
    assert (await handle.result()).status is Status.APPROVED

    history = await handle.fetch_history()
    raw_json = history.to_json()
    assert code not in raw_json
    assert code.lower() not in raw_json.lower()
    assert PHONE not in raw_json and PHONE[1:] not in raw_json
    assert EMAIL not in raw_json

    codec = codec_from_secrets(TEST_SECRETS)
    raw = [p for event in history.events for p in payloads_in(event)]
    assert len(raw) >= 6  # input, activity inputs/results, updates, result
    decoded = await codec.decode(raw)
    encrypted = 0
    for before, after in zip(raw, decoded, strict=True):
        if before.metadata.get("encoding") == ENCODING:
            encrypted += 1
        for blob in (before.SerializeToString(), after.SerializeToString()):
            assert code.encode() not in blob
        assert PHONE.encode() not in before.SerializeToString()
        assert EMAIL.encode() not in before.SerializeToString()
    assert encrypted >= 6
    # The check is meaningful: the destinations are really in the decoded payloads.
    plain = b"".join(p.data for p in decoded)
    assert PHONE.encode() in plain and EMAIL.encode() in plain
