"""The sandbox provider: test mode's simulated phone and mailbox.

It delivers nothing: each message (code included) goes into the sandbox inbox,
which only test-mode keys can read through `GET /v1/sandbox/messages`.

Magic numbers make delivery outcomes reproducible in test mode:

| number | outcome |
| --- | --- |
| `+15005550006` | delivered (like any other number) |
| `+15005550001` | invalid number: the send fails permanently, the plan falls back at once |
| `+15005550002` | accepted, then a `failed` delivery receipt: the plan falls back at once |
| `+15005550003` | accepted, never a receipt: the plan falls back when the step times out |

Messages to the last three never reach the inbox (the phone never got them).

An application's sandbox scenarios (`otp.sandbox.scenarios`) come before the magic
numbers when one matches: the delivery activity finds it and passes it in
(`with_scenario`); this adapter never reads the store. How a scenario's provider error
code classifies follows the Twilio adapter's own tables (`classify_code`).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from otp.domain import Channel, DeliveryReceiptInput, DeliveryStatus
from otp.sandbox.scenarios import DEFAULT_RECEIPT_ERROR, Scenario, ScenarioKind
from providers.base import (
    OutboundMessage,
    PermanentDeliveryError,
    RateLimitedError,
    SendReceipt,
    TransientDeliveryError,
    stable_message_id,
)
from providers.twilio import RATE_LIMIT_CODES, UNAVAILABLE_CODES

MAGIC_DELIVERED = "+15005550006"
MAGIC_INVALID = "+15005550001"
MAGIC_RECEIPT_FAILED = "+15005550002"
MAGIC_NO_RECEIPT = "+15005550003"
# The carrier error a failed sandbox receipt carries (as Twilio's "unreachable destination").
SANDBOX_FAILED_ERROR = "30003"


class CodeClass(StrEnum):
    """What a provider error code does to a send, as the real adapter would see it."""

    PERMANENT = "permanent"  # refused at send: the step fails at once with the code
    RATE_LIMITED = "rate_limited"  # 429-like: retried within the step, then the next step
    TRANSIENT = "transient"  # provider unavailable: retried within the step, then the next step
    FAILED_RECEIPT = "failed_receipt"  # accepted, then a failed receipt with the code


def classify_code(code: str) -> CodeClass:
    """As the Twilio adapter classifies an API error's code (rate limit, unavailable,
    else permanent, like an unknown 4xx), except Twilio's other 30xxx codes, which come
    in delivery receipts: accepted, then failed."""
    number = int(code)
    if number in RATE_LIMIT_CODES:
        return CodeClass.RATE_LIMITED
    if number in UNAVAILABLE_CODES:
        return CodeClass.TRANSIENT
    if 30000 <= number < 31000:
        return CodeClass.FAILED_RECEIPT
    return CodeClass.PERMANENT


class SandboxInbox(Protocol):
    async def add_sandbox_message(
        self,
        *,
        idempotency_key: str,
        message_id: str,
        verification_id: str,
        application_id: str,
        channel: str,
        to: str,
        subject: str,
        body: str,
    ) -> Any: ...

    async def find_sandbox_message(self, *, idempotency_key: str) -> Any | None: ...


class ReceiptSink(Protocol):
    """Sends a delivery receipt to a verification later, as a provider's callback would."""

    def __call__(self, verification_id: str, receipt: DeliveryReceiptInput) -> None: ...


class SandboxProvider:
    name = "sandbox"
    channels = frozenset(Channel)

    def __init__(self, inbox: SandboxInbox, receipts: ReceiptSink | None = None) -> None:
        self._inbox = inbox
        self._receipts = receipts

    def with_scenario(self, scenario: Scenario | None) -> SandboxProvider:
        """This sandbox for one send, simulating `scenario` (None: as usual)."""
        if scenario is None:
            return self
        return _ScenarioSandbox(self._inbox, self._receipts, scenario)

    def _receipt(
        self,
        message: OutboundMessage,
        message_id: str,
        status: DeliveryStatus,
        error_code: str | None = None,
    ) -> None:
        if self._receipts is not None:
            self._receipts(
                message.verification_id,
                DeliveryReceiptInput(
                    provider=self.name,
                    provider_message_id=message_id,
                    status=status,
                    error_code=error_code,
                    reference=message.idempotency_key,
                ),
            )

    async def _to_inbox(self, message: OutboundMessage, message_id: str) -> SendReceipt:
        await self._inbox.add_sandbox_message(
            idempotency_key=message.idempotency_key,
            message_id=message_id,
            verification_id=message.verification_id,
            application_id=message.application_id,
            channel=message.channel.value,
            to=message.to,
            subject=message.subject,
            body=message.text,
        )
        return SendReceipt(self.name, message_id, DeliveryStatus.DELIVERED)

    async def send(self, message: OutboundMessage) -> SendReceipt:
        message_id = stable_message_id("sbx_", message.idempotency_key)
        if message.to == MAGIC_INVALID:
            raise PermanentDeliveryError("invalid_number", "sandbox magic number: invalid")
        if message.to == MAGIC_RECEIPT_FAILED:
            self._receipt(message, message_id, DeliveryStatus.FAILED, SANDBOX_FAILED_ERROR)
            return SendReceipt(self.name, message_id, DeliveryStatus.SENT)
        if message.to == MAGIC_NO_RECEIPT:
            return SendReceipt(self.name, message_id, DeliveryStatus.SENT)
        return await self._to_inbox(message, message_id)

    async def find_sent(self, message: OutboundMessage, *, since: datetime) -> SendReceipt | None:
        """The inbox message an earlier send of this delivery key left, if any (magic
        numbers leave none). `since` is unused: keys are unique per delivery."""
        found = await self._inbox.find_sandbox_message(idempotency_key=message.idempotency_key)
        if found is None:
            return None
        return SendReceipt(self.name, str(found.message_id), DeliveryStatus.DELIVERED)


# Failed receipts still to come (delivered-then-failed), held until they are sent.
_LATER: set[asyncio.Task[None]] = set()


class _ScenarioSandbox(SandboxProvider):
    """The sandbox for one send that a scenario matched: the scenario instead of the
    magic numbers. Failed receipts travel the same way as the magic numbers' do."""

    def __init__(
        self, inbox: SandboxInbox, receipts: ReceiptSink | None, scenario: Scenario
    ) -> None:
        super().__init__(inbox, receipts)
        self.scenario = scenario

    async def send(self, message: OutboundMessage) -> SendReceipt:
        message_id = stable_message_id("sbx_", message.idempotency_key)
        scenario = self.scenario
        kind = scenario.kind
        if kind is ScenarioKind.PROVIDER_ERROR and scenario.error_code:
            code = scenario.error_code
            klass = classify_code(code)
            detail = f"sandbox scenario: provider error {code}"
            if klass is CodeClass.PERMANENT:
                raise PermanentDeliveryError(code, detail)
            if klass is CodeClass.RATE_LIMITED:
                raise RateLimitedError(detail)
            if klass is CodeClass.TRANSIENT:
                raise TransientDeliveryError(code, detail)
            self._receipt(message, message_id, DeliveryStatus.FAILED, code)
            return SendReceipt(self.name, message_id, DeliveryStatus.SENT)
        if kind is ScenarioKind.PROVIDER_DOWN:
            raise TransientDeliveryError("provider_down", "sandbox scenario: provider down")
        if kind is ScenarioKind.NO_RECEIPT:
            return SendReceipt(self.name, message_id, DeliveryStatus.SENT)
        if kind is ScenarioKind.DELAY:
            await asyncio.sleep(scenario.delay_s or 0)
            return await self._to_inbox(message, message_id)
        if kind is ScenarioKind.DELIVERED_THEN_FAILED:
            sent = await self._to_inbox(message, message_id)
            task = asyncio.get_running_loop().create_task(
                self._fail_later(
                    message,
                    message_id,
                    1.0 if scenario.delay_s is None else float(scenario.delay_s),
                )
            )
            _LATER.add(task)
            task.add_done_callback(_LATER.discard)
            return sent
        return await super().send(message)

    async def _fail_later(self, message: OutboundMessage, message_id: str, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        code = self.scenario.error_code or DEFAULT_RECEIPT_ERROR
        self._receipt(message, message_id, DeliveryStatus.FAILED, code)
