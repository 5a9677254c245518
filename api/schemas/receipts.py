"""The answer to a provider's delivery-receipt webhook."""

from __future__ import annotations

from pydantic import Field

from api.schemas.base import ResponseModel


class WebhookAck(ResponseModel):
    """How much of a provider's webhook delivery reached a verification."""

    statuses: int = Field(description="Message statuses the delivery carried.", examples=[1])
    forwarded: int = Field(
        description="Statuses forwarded to a running verification (the others could not be "
        "mapped to one, or it had already finished).",
        examples=[1],
    )
