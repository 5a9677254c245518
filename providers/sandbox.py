"""The sandbox provider: test mode's simulated phone and mailbox.

It delivers nothing: each message (code included) goes into the sandbox inbox,
which only test-mode keys can read through `GET /v1/sandbox/messages`.
"""

from __future__ import annotations

from typing import Any, Protocol

from otp.domain import Channel, DeliveryStatus
from providers.base import OutboundMessage, SendReceipt, stable_message_id


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


class SandboxProvider:
    name = "sandbox"
    channels = frozenset(Channel)

    def __init__(self, inbox: SandboxInbox) -> None:
        self._inbox = inbox

    async def send(self, message: OutboundMessage) -> SendReceipt:
        message_id = stable_message_id("sbx_", message.idempotency_key)
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
