"""The sandbox inbox: messages the sandbox provider 'delivered' in test mode."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from api.schemas.base import ResponseModel
from otp.domain import Channel
from otp.store.tables import SandboxMessage


class SandboxMessagePublic(ResponseModel):
    """A message the sandbox provider 'delivered' (test mode only): code included."""

    message_id: str
    verification_id: str
    channel: Channel
    to: str = Field(description="The full destination (this is the simulated phone/mailbox).")
    subject: str
    body: str
    created_at: datetime

    @classmethod
    def of(cls, row: SandboxMessage) -> SandboxMessagePublic:
        return cls(
            message_id=row.message_id,
            verification_id=row.verification_id,
            channel=Channel(row.channel),
            to=row.to,
            subject=row.subject,
            body=row.body,
            created_at=row.created_at,
        )


class SandboxMessageList(ResponseModel):
    messages: list[SandboxMessagePublic] = Field(description="Newest first.")
