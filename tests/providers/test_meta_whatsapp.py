"""Meta WhatsApp Cloud API adapter against a local server speaking the Graph wire format."""

from __future__ import annotations

import asyncio
from typing import Any

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
from providers.meta_whatsapp import MetaWhatsAppConfig, MetaWhatsAppProvider
from tests.helpers.scripted_provider import ProviderServer, Recorded, outbound

PHONE_NUMBER_ID = "106540352242922"
TOKEN = "EAAJB-meta-access-token-not-real"
WAMID = "wamid.HBgLMTQxNTU1NTAxMjMVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"


def config(server: ProviderServer, **overrides: Any) -> MetaWhatsAppConfig:
    values: dict[str, Any] = {
        "phone_number_id": PHONE_NUMBER_ID,
        "access_token": TOKEN,
        "template_name": "otp_copy_code",
        "api_version": "v23.0",
        "base_url": server.url,
        "timeouts": HttpTimeouts(connect_s=1.0, read_s=0.4, write_s=1.0, pool_s=1.0),
    }
    values.update(overrides)
    return MetaWhatsAppConfig(**values)


def accepted(req: Recorded) -> Response:
    return JSONResponse(
        {
            "messaging_product": "whatsapp",
            "contacts": [{"input": req.json["to"], "wa_id": req.json["to"]}],
            "messages": [{"id": WAMID, "message_status": "accepted"}],
        }
    )


def graph_error(code: int, status: int, message: str, subcode: int | None = None) -> JSONResponse:
    error: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": message},
        "fbtrace_id": "AbCdEfGhIjKlMnOpQrStUvW",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return JSONResponse({"error": error}, status_code=status)


async def test_sends_the_authentication_template_with_the_copy_code_button(
    server: ProviderServer,
) -> None:
    server.handler = accepted
    msg = outbound(Channel.WHATSAPP, code="318274", locale="pt-BR")
    receipt = await MetaWhatsAppProvider(config(server)).send(msg)

    assert receipt.provider == "meta_whatsapp"
    assert receipt.message_id == WAMID
    assert receipt.status is DeliveryStatus.SENT
    [req] = server.requests
    assert req.method == "POST"
    assert req.path == f"/v23.0/{PHONE_NUMBER_ID}/messages"
    assert req.headers["authorization"] == f"Bearer {TOKEN}"
    assert req.headers["content-type"] == "application/json"
    code_param = [{"type": "text", "text": "318274"}]
    assert req.json == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "14155550123",
        "type": "template",
        "template": {
            "name": "otp_copy_code",
            "language": {"code": "pt_BR"},
            "components": [
                {"type": "body", "parameters": code_param},
                {"type": "button", "sub_type": "url", "index": "0", "parameters": code_param},
            ],
        },
        "biz_opaque_callback_data": msg.idempotency_key,
    }


@pytest.mark.parametrize(
    ("locale", "language", "overrides"),
    [
        ("en", "en_US", {}),
        ("en-GB", "en_GB", {}),
        ("fr-CA", "fr", {}),
        ("zh", "zh_CN", {}),
        ("hi", "hi", {}),
        ("xx-YY", "en_US", {}),
        ("de", "de_DE", {"de": "de_DE"}),
    ],
)
async def test_template_language_follows_the_locale(
    server: ProviderServer, locale: str, language: str, overrides: dict[str, str]
) -> None:
    server.handler = accepted
    await MetaWhatsAppProvider(config(server, languages=overrides)).send(
        outbound(Channel.WHATSAPP, locale=locale)
    )
    assert server.requests[0].json["template"]["language"] == {"code": language}


@pytest.mark.parametrize(
    ("code", "status", "reason"),
    [
        (131026, 400, "undeliverable"),
        (131030, 400, "recipient_not_allowed"),
        (131021, 400, "invalid_recipient"),
        (100, 400, "invalid_request"),
        (190, 401, "auth_failed"),
        (132001, 404, "template_missing"),
        (131050, 400, "unsubscribed"),
    ],
)
async def test_permanent_graph_errors(
    server: ProviderServer, code: int, status: int, reason: str
) -> None:
    server.handler = lambda req: graph_error(
        code, status, f"(#{code}) failed for {req.json['to']}", subcode=2494010
    )
    with pytest.raises(PermanentDeliveryError) as caught:
        await MetaWhatsAppProvider(config(server)).send(outbound(Channel.WHATSAPP))

    assert caught.value.reason == reason
    assert f"code {code}/2494010" in str(caught.value)
    assert "4155550123" not in str(caught.value)


@pytest.mark.parametrize(
    ("code", "status"), [(130429, 429), (131048, 400), (131056, 400), (80007, 400)]
)
async def test_rate_limits_are_transient(server: ProviderServer, code: int, status: int) -> None:
    def limited(req: Recorded) -> Response:
        response = graph_error(code, status, "(#130429) Rate limit hit")
        response.headers["Retry-After"] = "30"
        return response

    server.handler = limited
    with pytest.raises(RateLimitedError) as caught:
        await MetaWhatsAppProvider(config(server)).send(outbound(Channel.WHATSAPP))
    assert isinstance(caught.value, TransientDeliveryError)
    assert caught.value.retry_after_s == 30
    assert "retry after 30s" in str(caught.value)


@pytest.mark.parametrize("status", [500, 503])
async def test_5xx_is_transient(server: ProviderServer, status: int) -> None:
    server.handler = lambda req: graph_error(131000, status, "Something went wrong")
    with pytest.raises(TransientDeliveryError) as caught:
        await MetaWhatsAppProvider(config(server)).send(outbound(Channel.WHATSAPP))
    assert caught.value.reason == "provider_unavailable"


async def test_read_timeout_is_outcome_unknown(server: ProviderServer) -> None:
    async def slow(req: Recorded) -> Response:
        await asyncio.sleep(1.0)
        return accepted(req)

    server.handler = slow
    msg = outbound(Channel.WHATSAPP)
    with pytest.raises(OutcomeUnknownError) as caught:
        await MetaWhatsAppProvider(config(server)).send(msg)
    assert caught.value.reference == msg.idempotency_key
    # Meta echoes this in the status webhook: the receipt can settle the step instead.
    assert server.requests[0].json["biz_opaque_callback_data"] == msg.idempotency_key


async def test_success_without_a_message_id_is_outcome_unknown(server: ProviderServer) -> None:
    server.handler = lambda req: JSONResponse({"messaging_product": "whatsapp", "messages": []})
    with pytest.raises(OutcomeUnknownError):
        await MetaWhatsAppProvider(config(server)).send(outbound(Channel.WHATSAPP))


async def test_refuses_without_a_code_or_for_another_channel(server: ProviderServer) -> None:
    provider = MetaWhatsAppProvider(config(server))
    with pytest.raises(PermanentDeliveryError, match="code"):
        await provider.send(outbound(Channel.WHATSAPP, code=""))
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(outbound(Channel.SMS))
    assert caught.value.reason == "channel_not_configured"
    assert server.requests == []


def test_config_repr_hides_the_token(server: ProviderServer) -> None:
    assert TOKEN not in repr(config(server))
