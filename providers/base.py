"""The provider interface and the delivery error classification shared by all adapters."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Protocol

from otp.domain import Channel, DeliveryStatus
from otp.domain.routing import Sender


@dataclass(frozen=True)
class OutboundMessage:
    """A rendered message for one destination. `code` is here for providers whose API
    takes it as a template parameter; adapters must never log it."""

    verification_id: str
    application_id: str
    channel: Channel
    to: str
    subject: str
    text: str
    idempotency_key: str
    locale: str = "en"
    html: str | None = None
    code: str = field(default="", repr=False)
    brand: str = ""
    # Seconds the code stays valid: adapters whose provider can drop a message still
    # queued after a deadline pass it on, so a late message never carries a dead code.
    expires_in_s: int | None = None
    # The sender a routing rule picked (None: the adapter's configured sender). Adapters
    # use the types they can send from and ignore the others.
    sender: Sender | None = None
    # WhatsApp: the application's pre-approved template (a Meta template name or a Twilio
    # Content SID `HX...`) and its language; None: the provider's configured one.
    whatsapp_template_name: str | None = None
    whatsapp_language: str | None = None


@dataclass(frozen=True)
class SendReceipt:
    provider: str
    message_id: str
    status: DeliveryStatus = DeliveryStatus.SENT


class DeliveryError(Exception):
    """Base of delivery failures. `reason` is a short machine code, never personal data."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or reason)
        self.reason = reason


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help (bad address, refused, not configured): fall back at once."""


class TransientDeliveryError(DeliveryError):
    """May succeed later (timeouts, 4xx SMTP, 5xx/429 HTTP): retry within the step's budget."""


OUTCOME_UNKNOWN = "outcome_unknown"


class OutcomeUnknownError(TransientDeliveryError):
    """The request may have reached the provider but no answer came back: reconcile, do not
    blindly re-send. `reference` is what the adapter attached to the message for matching
    (the idempotency key); it is not personal data."""

    def __init__(self, message: str = "", *, reference: str = "") -> None:
        super().__init__(OUTCOME_UNKNOWN, message or OUTCOME_UNKNOWN)
        self.reference = reference


class RateLimitedError(TransientDeliveryError):
    """HTTP 429 or a provider rate-limit code; `retry_after_s` is the provider's hint."""

    def __init__(self, message: str = "", *, retry_after_s: float | None = None) -> None:
        super().__init__("rate_limited", message or "rate_limited")
        self.retry_after_s = retry_after_s


class Provider(Protocol):
    name: str
    channels: frozenset[Channel]

    async def send(self, message: OutboundMessage) -> SendReceipt: ...


def stable_message_id(prefix: str, idempotency_key: str) -> str:
    """A provider message id that is the same for every retry of one delivery."""
    return prefix + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]
