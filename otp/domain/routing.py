"""The sender of a message, as a routing rule picks it: a type and the value the provider sends from.

Not personal data (it is the application's own number, name or service id): it may appear
in histories, logs and the event log.
"""

from __future__ import annotations

from enum import StrEnum

from otp.domain.base import PayloadModel


class SenderType(StrEnum):
    ALPHANUMERIC = "alphanumeric"  # a name ("ACME"): Twilio From, a gateway's sender field
    LONG_CODE = "long_code"  # an E.164 number
    SHORT_CODE = "short_code"  # a 5-6 digit short code
    MESSAGING_SERVICE = "messaging_service"  # a Twilio Messaging Service (MG...)
    WHATSAPP_SENDER = "whatsapp_sender"  # a WhatsApp number (Twilio) or phone number id (Meta)


class Sender(PayloadModel):
    type: SenderType
    value: str

    def label(self) -> str:
        """`type:value`, as the event log and the delivery records show it."""
        return f"{self.type.value}:{self.value}"


def send_reason(kind: str, rule_id: str | None, sender: Sender | None) -> str:
    """The event log's reason of a send attempt: its kind, then the rule and sender, if any
    (`step; rule rte_...; sender alphanumeric:ACME`)."""
    parts = [kind]
    if rule_id:
        parts.append(f"rule {rule_id}")
    if sender is not None:
        parts.append(f"sender {sender.label()}")
    return "; ".join(parts)
