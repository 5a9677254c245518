"""SMTP email delivery (aiosmtplib): plain text + HTML alternative.

Transport security: `use_tls` connects with implicit TLS (port 465); otherwise
`start_tls=None` (the default) upgrades with STARTTLS whenever the server offers it,
`True` requires it and `False` never upgrades. With credentials, the provider refuses to
log in over a connection that is not encrypted unless `allow_plaintext_auth` is set: the
send fails as a permanent `smtp_insecure_auth` configuration error before AUTH, so the
password and the code never travel in clear.
"""

from __future__ import annotations

import ssl
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
    start_tls: bool | None = None  # None: STARTTLS when offered; True: required; False: never
    use_tls: bool = False  # implicit TLS from the first byte (port 465)
    timeout_s: float = 10.0
    allow_plaintext_auth: bool = False
    tls_context: ssl.SSLContext | None = None  # None: the system's trust store


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
        client = aiosmtplib.SMTP(
            hostname=cfg.host,
            port=cfg.port,
            start_tls=cfg.start_tls,
            use_tls=cfg.use_tls,
            timeout=cfg.timeout_s,
            tls_context=cfg.tls_context,
        )
        try:
            async with client:
                if cfg.username:
                    encrypted = client.get_transport_info("sslcontext") is not None
                    if not encrypted and not cfg.allow_plaintext_auth:
                        raise PermanentDeliveryError(
                            "smtp_insecure_auth",
                            "SMTP server offers no TLS; refusing to log in in clear text"
                            " (set OTP_SMTP_ALLOW_PLAINTEXT_AUTH to allow it)",
                        )
                    await client.login(cfg.username, cfg.password or "")
                await client.send_message(email)
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
