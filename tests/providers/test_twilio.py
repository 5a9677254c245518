"""Twilio adapter against a local server speaking the 2010-04-01 REST wire format."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from starlette.responses import JSONResponse, Response

from otp.domain import Channel, DeliveryStatus
from providers.base import (
    OutcomeUnknownError,
    PermanentDeliveryError,
    RateLimitedError,
    TransientDeliveryError,
)
from providers.http import HttpTimeouts
from providers.twilio import TwilioConfig, TwilioProvider, build_twiml
from tests.helpers.scripted_provider import ProviderServer, Recorded, outbound

ACCOUNT_SID = "AC" + "a1" * 16
AUTH_TOKEN = "twilio-auth-token-not-real"
CALLBACK = "https://otp.example.com/v1/receipts/twilio"
FAST = HttpTimeouts(connect_s=1.0, read_s=0.4, write_s=1.0, pool_s=1.0)


def config(server: ProviderServer, **overrides: Any) -> TwilioConfig:
    values: dict[str, Any] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "sms_from": "+15005550006",
        "whatsapp_from": "+14155238886",
        "whatsapp_content_sids": {"en": "HX" + "e" * 32, "es": "HX" + "5" * 32},
        "voice_from": "+15005550006",
        "status_callback_url": CALLBACK,
        "base_url": server.url,
        "timeouts": FAST,
    }
    values.update(overrides)
    return TwilioConfig(**values)


def message_resource(sid: str, to: str, body: str, status: str = "queued") -> dict[str, Any]:
    return {
        "sid": sid,
        "account_sid": ACCOUNT_SID,
        "to": to,
        "from": "+15005550006",
        "body": body,
        "status": status,
        "direction": "outbound-api",
        "num_segments": "1",
        "error_code": None,
        "error_message": None,
        "date_created": format_datetime(datetime.now(UTC), usegmt=True),
        "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json",
    }


def twilio_error(code: int, status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status_code=status,
    )


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_sms_speaks_the_messages_wire_format(server: ProviderServer) -> None:
    def handler(req: Recorded) -> Response:
        return JSONResponse(
            message_resource("SM" + "0" * 32, req.form["To"], req.form["Body"]), status_code=201
        )

    server.handler = handler
    provider = TwilioProvider(config(server))
    msg = outbound(Channel.SMS)
    receipt = await provider.send(msg)
    await provider.aclose()

    assert receipt.provider == "twilio"
    assert receipt.message_id == "SM" + "0" * 32
    assert receipt.status is DeliveryStatus.SENT
    [req] = server.requests
    assert req.method == "POST"
    assert req.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert req.headers["authorization"] == basic(ACCOUNT_SID, AUTH_TOKEN)
    assert req.headers["content-type"] == "application/x-www-form-urlencoded"
    assert req.form == {
        "To": "+14155550123",
        "From": "+15005550006",
        "Body": msg.text,
        "StatusCallback": f"{CALLBACK}?ref=ver_0123456789abcdef%3A1",
    }
    # The reference survives the round trip so a receipt maps back to the delivery.
    query = dict(parse_qsl(urlsplit(req.form["StatusCallback"]).query))
    assert query == {"ref": msg.idempotency_key}


async def test_api_key_auth_messaging_service_and_validity_period(server: ProviderServer) -> None:
    server.handler = lambda req: JSONResponse(
        message_resource("SM" + "1" * 32, req.form["To"], req.form["Body"], "accepted"),
        status_code=201,
    )
    cfg = config(
        server,
        auth_token="",
        api_key_sid="SK" + "b" * 32,
        api_key_secret="api-key-secret-not-real",
        sms_from="",
        messaging_service_sid="MG" + "c" * 32,
        validity_period_s=600,
    )
    receipt = await TwilioProvider(cfg).send(outbound(Channel.SMS))

    assert receipt.message_id == "SM" + "1" * 32
    [req] = server.requests
    assert req.headers["authorization"] == basic("SK" + "b" * 32, "api-key-secret-not-real")
    assert req.form["MessagingServiceSid"] == "MG" + "c" * 32
    assert "From" not in req.form
    assert req.form["ValidityPeriod"] == "600"


async def test_whatsapp_uses_the_content_template_for_the_locale(server: ProviderServer) -> None:
    server.handler = lambda req: JSONResponse(
        message_resource("MM" + "2" * 32, req.form["To"], ""), status_code=201
    )
    receipt = await TwilioProvider(config(server)).send(
        outbound(Channel.WHATSAPP, locale="es-MX", code="907311")
    )

    assert receipt.message_id == "MM" + "2" * 32
    [req] = server.requests
    assert req.path.endswith("/Messages.json")
    assert req.form["To"] == "whatsapp:+14155550123"
    assert req.form["From"] == "whatsapp:+14155238886"
    assert req.form["ContentSid"] == "HX" + "5" * 32  # es-MX falls back to es
    assert json.loads(req.form["ContentVariables"]) == {"1": "907311"}
    assert "Body" not in req.form
    assert req.form["StatusCallback"].startswith(CALLBACK + "?ref=")


async def test_voice_call_posts_inline_twiml(server: ProviderServer) -> None:
    server.handler = lambda req: JSONResponse(
        {"sid": "CA" + "3" * 32, "status": "queued", "to": req.form["To"]}, status_code=201
    )
    receipt = await TwilioProvider(config(server)).send(
        outbound(Channel.VOICE, code="4071", locale="de-AT")
    )

    assert receipt.message_id == "CA" + "3" * 32
    [req] = server.requests
    assert req.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    assert req.form["To"] == "+14155550123"
    assert req.form["From"] == "+15005550006"
    assert req.form["StatusCallback"].startswith(CALLBACK + "?ref=")
    root = ET.fromstring(req.form["Twiml"])
    spoken = [el.text for el in root if el.tag == "Say"]
    assert spoken.count("4") == 2 and spoken.count("7") == 2
    assert {el.get("language") for el in root if el.tag == "Say"} == {"de-DE"}


@pytest.mark.parametrize(
    ("locale", "language", "voice"),
    [
        ("en", "en-US", "Polly.Joanna"),
        ("es", "es-ES", "Polly.Lucia"),
        ("pt-BR", "pt-BR", "Polly.Camila"),
        ("pt_PT", "pt-PT", "Polly.Ines"),
        ("ja", "ja-JP", "Polly.Mizuki"),
        ("zh-CN", "cmn-CN", "Polly.Zhiyu"),
        ("ar", "arb", "Polly.Zeina"),
        ("hi-IN", "hi-IN", "Polly.Aditi"),
        ("xx", "en-US", "Polly.Joanna"),
    ],
)
def test_twiml_reads_each_character_with_pauses_twice(
    locale: str, language: str, voice: str
) -> None:
    code = "582047"
    root = ET.fromstring(build_twiml(code, locale))

    assert root.tag == "Response"
    verbs = list(root)
    says = [el for el in verbs if el.tag == "Say"]
    assert all(el.get("language") == language and el.get("voice") == voice for el in says)
    assert all(el.get("length") == "1" for el in verbs if el.tag == "Pause")
    # Each character is its own <Say>, immediately followed by a <Pause>.
    digit_positions = [i for i, el in enumerate(verbs) if el.tag == "Say" and _is_char(el)]
    assert [verbs[i].text for i in digit_positions] == list(code) * 2
    assert all(verbs[i + 1].tag == "Pause" for i in digit_positions)
    # Two rounds, each introduced by a phrase that is not the code.
    intros = [el for el in says if not _is_char(el)]
    assert len(intros) == 2
    assert verbs.index(intros[1]) > digit_positions[len(code) - 1]


def _is_char(element: ET.Element) -> bool:
    return element.text is not None and len(element.text) == 1


def test_twiml_spells_alphanumeric_codes_and_honours_voice_overrides() -> None:
    root = ET.fromstring(
        build_twiml("7KQ3", "fr", voices={"fr": ("fr-FR", "Google.fr-FR-Standard-A")})
    )
    says = [el for el in root if el.tag == "Say"]
    assert [el.text for el in says if _is_char(el)] == list("7KQ3") * 2
    assert {el.get("voice") for el in says} == {"Google.fr-FR-Standard-A"}


@pytest.mark.parametrize(
    ("code", "status", "reason"),
    [
        (21211, 400, "invalid_number"),
        (21610, 400, "unsubscribed"),
        (21614, 400, "not_mobile"),
        (21408, 400, "region_not_permitted"),
        (63016, 400, "whatsapp_window_closed"),
        (20003, 401, "auth_failed"),
        (21612, 400, "unreachable"),
        (99999, 400, "rejected"),
    ],
)
async def test_permanent_twilio_errors(
    server: ProviderServer, code: int, status: int, reason: str
) -> None:
    # Twilio's prose repeats the phone number; none of it may leak into our error.
    server.handler = lambda req: twilio_error(
        code, status, f"The 'To' number {req.form['To']} is not a valid phone number."
    )
    channel = Channel.WHATSAPP if code == 63016 else Channel.SMS
    with pytest.raises(PermanentDeliveryError) as caught:
        await TwilioProvider(config(server)).send(outbound(channel))

    assert caught.value.reason == reason
    assert str(code) in str(caught.value)
    assert "4155550123" not in str(caught.value)


async def test_429_is_transient_and_keeps_retry_after(server: ProviderServer) -> None:
    server.handler = lambda req: Response(
        json.dumps({"code": 20429, "message": "Too Many Requests", "status": 429}),
        status_code=429,
        headers={"Retry-After": "7", "Content-Type": "application/json"},
    )
    with pytest.raises(RateLimitedError) as caught:
        await TwilioProvider(config(server)).send(outbound())

    assert isinstance(caught.value, TransientDeliveryError)
    assert caught.value.reason == "rate_limited"
    assert caught.value.retry_after_s == 7
    assert "retry after 7s" in str(caught.value)


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_transient(server: ProviderServer, status: int) -> None:
    server.handler = lambda req: twilio_error(20500, status, "Internal Server Error")
    with pytest.raises(TransientDeliveryError) as caught:
        await TwilioProvider(config(server)).send(outbound())
    assert caught.value.reason == "provider_unavailable"
    assert not isinstance(caught.value, OutcomeUnknownError)


async def test_read_timeout_after_the_request_is_outcome_unknown(server: ProviderServer) -> None:
    async def slow(req: Recorded) -> Response:
        await asyncio.sleep(1.0)
        return JSONResponse(message_resource("SM" + "4" * 32, req.form["To"], ""), status_code=201)

    server.handler = slow
    msg = outbound()
    with pytest.raises(OutcomeUnknownError) as caught:
        await TwilioProvider(config(server)).send(msg)

    assert caught.value.reason == "outcome_unknown"
    assert caught.value.reference == msg.idempotency_key
    assert len(server.requests) == 1  # it did reach the provider: a blind re-send would duplicate


async def test_connection_refused_is_plainly_transient(closed_port_url: str) -> None:
    cfg = TwilioConfig(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        sms_from="+15005550006",
        base_url=closed_port_url,
        timeouts=FAST,
    )
    with pytest.raises(TransientDeliveryError) as caught:
        await TwilioProvider(cfg).send(outbound())
    assert caught.value.reason == "connect_failed"
    assert not isinstance(caught.value, OutcomeUnknownError)


async def test_2xx_without_a_sid_is_outcome_unknown(server: ProviderServer) -> None:
    server.handler = lambda req: Response("<html>ok</html>", status_code=200)
    with pytest.raises(OutcomeUnknownError):
        await TwilioProvider(config(server)).send(outbound())


async def test_unconfigured_channel_fails_without_a_request(server: ProviderServer) -> None:
    provider = TwilioProvider(config(server, voice_from=""))
    assert Channel.VOICE not in provider.channels
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(outbound(Channel.VOICE))
    assert caught.value.reason == "channel_not_configured"
    assert server.requests == []


async def test_find_sent_reconciles_after_an_unknown_outcome(server: ProviderServer) -> None:
    msg = outbound()
    old = message_resource("SM" + "5" * 32, msg.to, msg.text)
    old["date_created"] = format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)
    other = message_resource("SM" + "6" * 32, msg.to, "another verification's text")
    ours = message_resource("SM" + "7" * 32, msg.to, msg.text)

    def listing(req: Recorded) -> Response:
        return JSONResponse({"messages": [other, ours, old], "next_page_uri": None, "page": 0})

    server.handler = listing
    provider = TwilioProvider(config(server))
    found = await provider.find_sent(msg, since=datetime.now(UTC) - timedelta(minutes=1))

    assert found is not None and found.message_id == "SM" + "7" * 32
    [req] = server.requests
    assert req.method == "GET"
    assert req.path.endswith("/Messages.json")
    assert req.query["To"] == msg.to
    assert req.query["From"] == "+15005550006"
    assert req.headers["authorization"] == basic(ACCOUNT_SID, AUTH_TOKEN)

    server.handler = lambda req: JSONResponse({"messages": [other, old]})
    assert await provider.find_sent(msg, since=datetime.now(UTC) - timedelta(minutes=1)) is None


def test_config_repr_hides_secrets() -> None:
    cfg = TwilioConfig(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        api_key_sid="SKx",
        api_key_secret="api-secret-value",
    )
    assert AUTH_TOKEN not in repr(cfg)
    assert "api-secret-value" not in repr(cfg)
    with pytest.raises(ValueError, match="auth_token"):
        TwilioConfig(account_sid=ACCOUNT_SID)


@pytest.mark.parametrize(
    ("configured", "expires_in", "sent"),
    [
        (600, 300, "300"),
        (120, 300, "120"),
        (None, 90, "90"),
        (None, 0, "1"),
        (None, 10**6, "36000"),
    ],
)
async def test_validity_period_never_outlives_the_code(
    server: ProviderServer, configured: int | None, expires_in: int, sent: str
) -> None:
    """Twilio drops a message still queued after ValidityPeriod: a backed-up queue must not
    deliver a code that has expired, so the period is the code's remaining life at most."""
    server.handler = lambda req: JSONResponse(
        message_resource("SM" + "4" * 32, req.form["To"], req.form.get("Body", "")),
        status_code=201,
    )
    provider = TwilioProvider(config(server, validity_period_s=configured))
    await provider.send(dataclasses.replace(outbound(Channel.SMS), expires_in_s=expires_in))

    [req] = server.requests
    assert req.form["ValidityPeriod"] == sent
