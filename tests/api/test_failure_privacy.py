"""A store error during a delivery puts neither the code nor the number into the Temporal
history (failures are encoded by the payload codec) or the logs (SQLAlchemy errors hide
their bound parameters)."""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import Iterator

import httpx
import pytest
from google.protobuf.message import Message
from sqlalchemy import text
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from otp.domain import STEP_TIMEOUT_MIN_S, VerificationInput
from otp.security.codes import derive_code
from otp.settings import Secrets
from otp.store import Store
from tests.api.test_logs import captured
from tests.helpers.api import Keys

__all__ = ["captured"]  # the log-capturing fixture

PHONE = "+14155550142"
EMAIL = "privacy@example.com"


def fields_of(message: Message) -> Iterator[str | bytes]:
    """Every string and bytes value in a proto message, recursively (bytes stay raw)."""
    for _, value in message.ListFields():
        if isinstance(value, Message):
            yield from fields_of(value)
        elif isinstance(value, str | bytes):
            yield value
        elif hasattr(value, "items"):  # a map
            for key, item in value.items():
                yield key
                yield from fields_of(item) if isinstance(item, Message) else [item]
        elif hasattr(value, "__iter__"):  # a repeated field
            for item in value:
                yield from fields_of(item) if isinstance(item, Message) else [item]


def leaks(value: str | bytes, secrets_: dict[str, str]) -> list[str]:
    raw = value if isinstance(value, bytes) else value.encode()
    found = []
    for what, secret in secrets_.items():
        if re.search(rb"(?<![0-9A-Za-z])" + re.escape(secret.encode()), raw):
            found.append(what)
    return found


@pytest.fixture
async def sandbox_down(store: Store) -> None:
    """The sandbox inbox table is gone: every sandbox delivery fails with a store error."""
    async with store.engine.begin() as conn:
        await conn.execute(text("DROP TABLE sandbox_messages"))


@pytest.mark.usefixtures("worker", "sandbox_down")
async def test_a_store_error_in_a_delivery_leaks_no_code_or_number(
    http: httpx.AsyncClient,
    keys: Keys,
    dev_env: WorkflowEnvironment,
    captured: io.StringIO,
    secrets: Secrets,
) -> None:
    created = await http.post(
        "/v1/verifications",
        json={
            "to": PHONE,
            "channels": [
                # The shortest step: its delivery's retries stop within seconds, not a minute.
                {"channel": "sms", "timeout_s": STEP_TIMEOUT_MIN_S},
                {"channel": "email", "to": EMAIL},
            ],
        },
        headers=keys.test_headers,
    )
    assert created.status_code == 201, created.text
    vid = created.json()["id"]
    handle = dev_env.client.get_workflow_handle(vid)

    # The first step's delivery fails for good (its attempts used up) into the history.
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        history = await handle.fetch_history()
        failed = [
            e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
        ]
        if failed:
            break
        assert asyncio.get_running_loop().time() < deadline, "no delivery failure in history"
        await asyncio.sleep(0.2)

    started = history.events[0].workflow_execution_started_event_attributes
    (decoded,) = await dev_env.client.data_converter.decode(
        started.input.payloads, [VerificationInput]
    )
    assert isinstance(decoded, VerificationInput) and decoded.code_nonce
    code = derive_code(
        secrets.code_secret, vid, decoded.code_nonce, decoded.code_length, decoded.code_type
    )
    forbidden = {"code": code, "number": PHONE, "number prefix": PHONE[:-4], "email": EMAIL}

    # The failure is there, and encoded: its message is the codec's placeholder.
    failure = failed[0].activity_task_failed_event_attributes.failure
    assert failure.HasField("encoded_attributes")
    assert failure.message == "Encoded failure" and not failure.stack_trace
    description = await handle.describe()
    values = [v for e in history.events for v in fields_of(e)]
    values += list(fields_of(description.raw_description))
    assert any(isinstance(v, bytes) and len(v) > 12 for v in values)  # payloads were walked
    for value in values:
        assert not leaks(value, forbidden), (leaks(value, forbidden), value)

    # The decoded failure still tells the operator what went wrong (no store parameters).
    await asyncio.sleep(0.2)  # the worker logs the failed attempt as it completes it
    lines = [json.loads(line) for line in captured.getvalue().splitlines() if line.strip()]
    assert any("sandbox_messages" in json.dumps(entry) for entry in lines), "no error logged"
    for entry in lines:
        for key, value in entry.items():
            if key != "ts" and isinstance(value, str):
                assert not leaks(value, forbidden), (leaks(value, forbidden), entry)
