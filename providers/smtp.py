"""SMTP email delivery (aiosmtplib): plain text + HTML alternative."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib

from otp.domain import Channel
from providers.base import (
    OutboundMessage,
    PermanentDeliveryError,
    SendReceipt,
    TransientDeliveryError,
    stable_message_id,
)


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    start_tls: bool = False
    use_tls: bool = False
    timeout_s: float = 10.0


class SmtpProvider:
    name = "smtp"
    channels = frozenset({Channel.EMAIL})

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config

    def build(self, message: OutboundMessage) -> tuple[EmailMessage, str]:
        message_id = stable_message_id("smtp_", message.idempotency_key)
        domain = self._config.sender.rpartition("@")[2].rstrip(">") or "localhost"
        email = EmailMessage()
        email["From"] = self._config.sender
        email["To"] = message.to
        email["Subject"] = message.subject
        email["Date"] = formatdate(localtime=False)
        # Stable across retries so a receiving system can drop a duplicate of an unknown outcome.
        email["Message-ID"] = f"<{message_id}@{domain}>"
        email["Auto-Submitted"] = "auto-generated"
        email.set_content(message.text)
        if message.html:
            email.add_alternative(message.html, subtype="html")
        return email, message_id

    async def send(self, message: OutboundMessage) -> SendReceipt:
        email, message_id = self.build(message)
        cfg = self._config
        try:
            await aiosmtplib.send(
                email,
                hostname=cfg.host,
                port=cfg.port,
                username=cfg.username,
                password=cfg.password,
                start_tls=cfg.start_tls,
                use_tls=cfg.use_tls,
                timeout=cfg.timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [err.code for err in exc.recipients]
            if codes and all(code >= 500 for code in codes):
                raise PermanentDeliveryError("recipient_refused", f"SMTP {codes}") from None
            raise TransientDeliveryError("recipient_deferred", f"SMTP {codes}") from None
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code >= 500:
                raise PermanentDeliveryError("smtp_rejected", f"SMTP {exc.code}") from None
            raise TransientDeliveryError("smtp_deferred", f"SMTP {exc.code}") from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise TransientDeliveryError("smtp_unavailable", type(exc).__name__) from None
        return SendReceipt(self.name, message_id)
