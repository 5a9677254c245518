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
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from otp.domain import Channel, DeliveryReceiptInput, DeliveryStatus
from providers.base import (
    OutboundMessage,
    PermanentDeliveryError,
    SendReceipt,
    stable_message_id,
)

MAGIC_DELIVERED = "+15005550006"
MAGIC_INVALID = "+15005550001"
MAGIC_RECEIPT_FAILED = "+15005550002"
MAGIC_NO_RECEIPT = "+15005550003"
# The carrier error a failed sandbox receipt carries (as Twilio's "unreachable destination").
SANDBOX_FAILED_ERROR = "30003"


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

    async def send(self, message: OutboundMessage) -> SendReceipt:
        message_id = stable_message_id("sbx_", message.idempotency_key)
        if message.to == MAGIC_INVALID:
            raise PermanentDeliveryError("invalid_number", "sandbox magic number: invalid")
        if message.to == MAGIC_RECEIPT_FAILED:
            if self._receipts is not None:
                self._receipts(
                    message.verification_id,
                    DeliveryReceiptInput(
                        provider=self.name,
                        provider_message_id=message_id,
                        status=DeliveryStatus.FAILED,
                        error_code=SANDBOX_FAILED_ERROR,
                        reference=message.idempotency_key,
                    ),
                )
            return SendReceipt(self.name, message_id, DeliveryStatus.SENT)
        if message.to == MAGIC_NO_RECEIPT:
            return SendReceipt(self.name, message_id, DeliveryStatus.SENT)
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

    async def find_sent(self, message: OutboundMessage, *, since: datetime) -> SendReceipt | None:
        """The inbox message an earlier send of this delivery key left, if any (magic
        numbers leave none). `since` is unused: keys are unique per delivery."""
        found = await self._inbox.find_sandbox_message(idempotency_key=message.idempotency_key)
        if found is None:
            return None
        return SendReceipt(self.name, str(found.message_id), DeliveryStatus.DELIVERED)
