"""The sandbox provider simulating a scenario it is handed (no store)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from otp.domain import Channel, DeliveryReceiptInput, DeliveryStatus
from otp.sandbox.scenarios import Scenario, ScenarioKind
from providers.base import (
    OutboundMessage,
    PermanentDeliveryError,
    RateLimitedError,
    TransientDeliveryError,
)
from providers.sandbox import MAGIC_INVALID, CodeClass, SandboxProvider, classify_code


class Inbox:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def add_sandbox_message(self, **fields: Any) -> None:
        self.messages.append(fields)

    async def find_sandbox_message(self, *, idempotency_key: str) -> Any | None:
        return None


class Receipts:
    def __init__(self) -> None:
        self.got: list[DeliveryReceiptInput] = []

    def __call__(self, verification_id: str, receipt: DeliveryReceiptInput) -> None:
        self.got.append(receipt)


def outbound(to: str = "+447700900123") -> OutboundMessage:
    return OutboundMessage(
        verification_id="ver_x",
        application_id="app_x",
        channel=Channel.SMS,
        to=to,
        subject="",
        text="Your code is 123456",
        idempotency_key="key-1",
    )


def _scenario(kind: ScenarioKind, **fields: Any) -> Scenario:
    return Scenario(id="sbs_x", kind=kind, **fields)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("21211", CodeClass.PERMANENT),
        ("21610", CodeClass.PERMANENT),
        ("99999", CodeClass.PERMANENT),
        ("20429", CodeClass.RATE_LIMITED),
        ("20503", CodeClass.TRANSIENT),
        ("30001", CodeClass.TRANSIENT),
        ("30007", CodeClass.FAILED_RECEIPT),
        ("30003", CodeClass.FAILED_RECEIPT),
    ],
)
def test_codes_classify_as_the_twilio_adapter_does(code: str, expected: CodeClass) -> None:
    assert classify_code(code) is expected


async def test_provider_errors_raise_or_fail_by_receipt() -> None:
    inbox, receipts = Inbox(), Receipts()
    sandbox = SandboxProvider(inbox, receipts)
    error = sandbox.with_scenario(_scenario(ScenarioKind.PROVIDER_ERROR, error_code="21211"))
    with pytest.raises(PermanentDeliveryError) as permanent:
        await error.send(outbound())
    assert permanent.value.reason == "21211"
    limited = sandbox.with_scenario(_scenario(ScenarioKind.PROVIDER_ERROR, error_code="20429"))
    with pytest.raises(RateLimitedError):
        await limited.send(outbound())
    down = sandbox.with_scenario(_scenario(ScenarioKind.PROVIDER_DOWN))
    with pytest.raises(TransientDeliveryError) as transient:
        await down.send(outbound())
    assert transient.value.reason == "provider_down"
    filtered = sandbox.with_scenario(_scenario(ScenarioKind.PROVIDER_ERROR, error_code="30007"))
    sent = await filtered.send(outbound())
    assert sent.status is DeliveryStatus.SENT
    assert [(r.status, r.error_code) for r in receipts.got] == [(DeliveryStatus.FAILED, "30007")]
    assert inbox.messages == []


async def test_delay_then_delivered_and_delivered_then_failed() -> None:
    inbox, receipts = Inbox(), Receipts()
    sandbox = SandboxProvider(inbox, receipts)
    loop = asyncio.get_running_loop()
    started = loop.time()
    delayed = await sandbox.with_scenario(_scenario(ScenarioKind.DELAY, delay_s=1)).send(outbound())
    assert loop.time() - started >= 1 and delayed.status is DeliveryStatus.DELIVERED
    late = sandbox.with_scenario(_scenario(ScenarioKind.DELIVERED_THEN_FAILED, delay_s=0))
    assert (await late.send(outbound())).status is DeliveryStatus.DELIVERED
    assert len(inbox.messages) == 2
    for _ in range(50):
        if receipts.got:
            break
        await asyncio.sleep(0.01)
    assert [(r.status, r.error_code) for r in receipts.got] == [(DeliveryStatus.FAILED, "30003")]


async def test_a_scenario_overrides_a_magic_number_and_none_keeps_it() -> None:
    inbox = Inbox()
    sandbox = SandboxProvider(inbox)
    assert sandbox.with_scenario(None) is sandbox
    with pytest.raises(PermanentDeliveryError, match="invalid"):
        await sandbox.send(outbound(MAGIC_INVALID))
    # matched on the magic number upstream (by its keyed hash); the sandbox gets the result
    none = sandbox.with_scenario(_scenario(ScenarioKind.NO_RECEIPT, to_hash="h:" + MAGIC_INVALID))
    assert (await none.send(outbound(MAGIC_INVALID))).status is DeliveryStatus.SENT
    assert inbox.messages == []
