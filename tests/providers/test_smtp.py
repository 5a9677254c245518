"""SMTP delivery to a real aiosmtpd server: MIME parts, headers and error classification."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from temporalio.exceptions import ApplicationError

from otp.domain import Channel, CodeType, ErrorType, Mode
from otp.security.codes import derive_code
from otp.store import Store
from providers.base import OutboundMessage, PermanentDeliveryError, TransientDeliveryError
from providers.smtp import SmtpConfig, SmtpProvider
from tests.activities.conftest import EMAIL, NONCE, activity_env, deliver_input, make_activities
from tests.conftest import TEST_SECRETS

REFUSED = "nobody@example.com"
DEFERRED = "later@example.com"
SENDER = "Acme <no-reply@acme.test>"


@dataclass
class RecordingHandler:
    """Accepts mail, except REFUSED (550) and DEFERRED (451) recipients; records envelopes."""

    received: list[tuple[str, list[str], bytes]] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address == REFUSED:
            return "550 5.1.1 no such user"
        if address == DEFERRED:
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def smtp_server() -> Iterator[tuple[RecordingHandler, int]]:
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def provider(port: int) -> SmtpProvider:
    return SmtpProvider(SmtpConfig(host="127.0.0.1", port=port, sender=SENDER, timeout_s=5))


def outbound(to: str, key: str = "ver_x:2") -> OutboundMessage:
    return OutboundMessage(
        verification_id="ver_x",
        application_id="app_test",
        channel=Channel.EMAIL,
        to=to,
        subject="Your code",
        text="Your verification code is 123456.",
        html="<p>123456</p>",
        idempotency_key=key,
        code="123456",
    )


def parse(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


async def test_deliver_sends_a_localised_text_and_html_email(
    smtp_server: tuple[RecordingHandler, int], store: Store, workflow_id: str
) -> None:
    handler, port = smtp_server
    acts = make_activities(store, {Channel.EMAIL: provider(port)})
    input = deliver_input(
        workflow_id, mode=Mode.LIVE, channel=Channel.EMAIL, locale="fr", brand="Acme & Co"
    )
    result = await activity_env(workflow_id, "4").run(acts.deliver, input)
    # A retry of the same activity (outcome unknown) sends again with the same Message-ID.
    await activity_env(workflow_id, "4", attempt=2).run(acts.deliver, input)

    assert result.provider == "smtp"
    assert len(handler.received) == 2
    (mail_from, rcpt_tos, raw), (_, _, raw_retry) = handler.received
    assert mail_from == "no-reply@acme.test" and rcpt_tos == [EMAIL]
    message, retry = parse(raw), parse(raw_retry)
    code = derive_code(TEST_SECRETS.code_secret, workflow_id, NONCE, 6, CodeType.NUMERIC)

    assert message["Subject"] == "Votre code de vérification Acme & Co"
    assert message["To"] == EMAIL
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"] == f"<{result.provider_message_id}@acme.test>"
    assert retry["Message-ID"] == message["Message-ID"]
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    assert code in text.get_content() and "Votre code de vérification" in text.get_content()
    assert code in html.get_content()
    assert "Acme &amp; Co" in html.get_content() and "Acme & Co" not in html.get_content()


async def test_refused_recipient_is_a_permanent_failure(
    smtp_server: tuple[RecordingHandler, int], store: Store, workflow_id: str
) -> None:
    handler, port = smtp_server
    with pytest.raises(PermanentDeliveryError) as info:
        await provider(port).send(outbound(REFUSED))
    assert info.value.reason == "recipient_refused"

    acts = make_activities(store, {Channel.EMAIL: provider(port)})
    input = deliver_input(workflow_id, mode=Mode.LIVE, channel=Channel.EMAIL, to=REFUSED)
    with pytest.raises(ApplicationError) as failure:
        await activity_env(workflow_id).run(acts.deliver, input)
    assert failure.value.type == ErrorType.PERMANENT_DELIVERY and failure.value.non_retryable
    assert REFUSED not in str(failure.value)
    assert handler.received == []


async def test_deferred_recipient_is_a_transient_failure(
    smtp_server: tuple[RecordingHandler, int],
) -> None:
    handler, port = smtp_server
    with pytest.raises(TransientDeliveryError) as info:
        await provider(port).send(outbound(DEFERRED))
    assert info.value.reason == "recipient_deferred"
    assert handler.received == []


async def test_server_down_is_a_transient_failure(store: Store, workflow_id: str) -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(TransientDeliveryError) as info:
        await provider(port).send(outbound(EMAIL))
    assert info.value.reason == "smtp_unavailable"

    acts = make_activities(store, {Channel.EMAIL: provider(port)})
    input = deliver_input(workflow_id, mode=Mode.LIVE, channel=Channel.EMAIL)
    with pytest.raises(ApplicationError) as failure:
        await activity_env(workflow_id).run(acts.deliver, input)
    assert failure.value.type == ErrorType.TRANSIENT_DELIVERY
    assert not failure.value.non_retryable


def test_message_id_is_stable_per_idempotency_key() -> None:
    smtp = provider(25)
    first, first_id = smtp.build(outbound(EMAIL, key="ver_a:2"))
    again, again_id = smtp.build(outbound(EMAIL, key="ver_a:2"))
    other, other_id = smtp.build(outbound(EMAIL, key="ver_a:3"))
    assert first_id == again_id != other_id
    assert first["Message-ID"] == again["Message-ID"] != other["Message-ID"]
