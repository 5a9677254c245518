"""SMTP transport security against a real aiosmtpd server: STARTTLS when offered, no login
in clear text unless allowed, implicit TLS (SMTPS)."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from temporalio.exceptions import ApplicationError

from otp.domain import Channel, ErrorType, Mode
from otp.store import Store
from providers.base import PermanentDeliveryError
from providers.smtp import SmtpConfig, SmtpProvider
from tests.activities.conftest import EMAIL, activity_env, deliver_input, make_activities
from tests.providers.test_smtp import SENDER, RecordingHandler, free_port, outbound

USER, PASSWORD = "mailer", "s3cret-smtp-password"


def encrypted(server: Any) -> bool:
    """Whether the aiosmtpd session's connection is TLS at this moment."""
    return server.transport.get_extra_info("ssl_object") is not None


@dataclass
class Authenticator:
    """Accepts USER/PASSWORD; records whether each AUTH arrived over TLS."""

    attempts: list[bool] = field(default_factory=list)

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        self.attempts.append(encrypted(server))
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(),
            auth_data.password.decode(),
        ) == (USER, PASSWORD)
        return AuthResult(success=ok)


@dataclass(frozen=True)
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A self-signed certificate for 127.0.0.1, trusted by the client context only."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder: Path = tmp_path_factory.mktemp("smtp-tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    return Tls(server=server, client=ssl.create_default_context(cafile=str(cert_file)))


@dataclass
class Server:
    handler: RecordingHandler
    auth: Authenticator
    port: int


def serve(**kwargs: Any) -> Iterator[Server]:
    server = Server(RecordingHandler(), Authenticator(), free_port())
    controller = Controller(
        server.handler,
        hostname="127.0.0.1",
        port=server.port,
        authenticator=server.auth,
        auth_require_tls=False,  # offer AUTH on a clear connection too
        **kwargs,
    )
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


@pytest.fixture
def clear_server() -> Iterator[Server]:
    """AUTH offered, no STARTTLS."""
    yield from serve()


@pytest.fixture
def starttls_server(tls: Tls) -> Iterator[Server]:
    yield from serve(tls_context=tls.server)


@pytest.fixture
def smtps_server(tls: Tls) -> Iterator[Server]:
    yield from serve(ssl_context=tls.server)


def provider(port: int, **kwargs: Any) -> SmtpProvider:
    config = SmtpConfig(
        host="127.0.0.1",
        port=port,
        sender=SENDER,
        username=USER,
        password=PASSWORD,
        timeout_s=5,
        **kwargs,
    )
    return SmtpProvider(config)


async def test_no_login_in_clear_text_by_default(
    clear_server: Server, store: Store, workflow_id: str
) -> None:
    with pytest.raises(PermanentDeliveryError) as info:
        await provider(clear_server.port).send(outbound(EMAIL))
    assert info.value.reason == "smtp_insecure_auth"
    assert PASSWORD not in str(info.value)
    assert clear_server.auth.attempts == [] and clear_server.handler.received == []

    # Through the activity: a permanent, non-retryable failure naming no secret.
    acts = make_activities(store, {Channel.EMAIL: provider(clear_server.port)})
    input = deliver_input(workflow_id, mode=Mode.LIVE, channel=Channel.EMAIL)
    with pytest.raises(ApplicationError) as failure:
        await activity_env(workflow_id).run(acts.deliver, input)
    assert failure.value.type == ErrorType.PERMANENT_DELIVERY and failure.value.non_retryable
    assert "smtp_insecure_auth" in str(failure.value)
    assert PASSWORD not in str(failure.value) and EMAIL not in str(failure.value)
    assert clear_server.auth.attempts == [] and clear_server.handler.received == []


async def test_login_in_clear_text_only_when_allowed(clear_server: Server) -> None:
    await provider(clear_server.port, allow_plaintext_auth=True).send(outbound(EMAIL))
    assert clear_server.auth.attempts == [False]
    assert len(clear_server.handler.received) == 1


async def test_starttls_is_used_when_offered_before_auth(starttls_server: Server, tls: Tls) -> None:
    await provider(starttls_server.port, tls_context=tls.client).send(outbound(EMAIL))
    assert starttls_server.auth.attempts == [True]  # upgraded before AUTH
    assert len(starttls_server.handler.received) == 1


async def test_starttls_is_used_without_credentials_too(starttls_server: Server, tls: Tls) -> None:
    seen: list[bool] = []
    original = starttls_server.handler.handle_DATA

    async def handle_data(server: Any, session: Any, envelope: Any) -> str:
        seen.append(encrypted(server))
        return await original(server, session, envelope)

    starttls_server.handler.handle_DATA = handle_data  # type: ignore[method-assign]
    config = SmtpConfig(
        host="127.0.0.1", port=starttls_server.port, sender=SENDER, tls_context=tls.client
    )
    await SmtpProvider(config).send(outbound(EMAIL))
    assert seen == [True]


async def test_implicit_tls(smtps_server: Server, tls: Tls) -> None:
    await provider(smtps_server.port, use_tls=True, tls_context=tls.client).send(outbound(EMAIL))
    assert smtps_server.auth.attempts == [True]
    assert len(smtps_server.handler.received) == 1
