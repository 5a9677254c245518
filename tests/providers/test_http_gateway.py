"""Generic HTTP SMS gateway adapter against a local JSON gateway."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from starlette.responses import JSONResponse, Response

from otp.domain import Channel
from providers.base import (
    OutcomeUnknownError,
    PermanentDeliveryError,
    RateLimitedError,
    TransientDeliveryError,
    stable_message_id,
)
from providers.http import HttpTimeouts
from providers.http_gateway import HttpGatewayConfig, HttpGatewayProvider, extract_path
from tests.helpers.scripted_provider import Handler, ProviderServer, Recorded, outbound

API_KEY = "gw-api-key-not-real"
TEMPLATE = json.dumps(
    {
        "messages": [
            {
                "destination": "$to",
                "content": {"text": "$text"},
                "clientRef": "$message_id",
                "meta": {"otp": "$code", "key": "$idempotency_key"},
            }
        ],
        "priority": 1,
    }
)


def config(server: ProviderServer, **overrides: Any) -> HttpGatewayConfig:
    values: dict[str, Any] = {
        "url": f"{server.url}/sms/v2/send",
        "body_template": TEMPLATE,
        "auth_header_name": "X-Api-Key",
        "auth_header_value": API_KEY,
        "message_id_path": "data.messages.0.id",
        "timeouts": HttpTimeouts(connect_s=1.0, read_s=0.4, write_s=1.0, pool_s=1.0),
    }
    values.update(overrides)
    return HttpGatewayConfig(**values)


def answer(status: int) -> Handler:
    return lambda req: Response(status_code=status)


def accepted(req: Recorded) -> Response:
    return JSONResponse({"data": {"messages": [{"id": "gw-81724", "status": "ACCEPTED"}]}})


async def test_renders_the_body_template_and_sends_the_idempotency_key(
    server: ProviderServer,
) -> None:
    server.handler = accepted
    text = 'Acme: "code" 482915\nback\\slash ünïcode €'
    msg = outbound(text=text)
    receipt = await HttpGatewayProvider(config(server)).send(msg)

    assert receipt.provider == "http_gateway"
    assert receipt.message_id == "gw-81724"
    [req] = server.requests
    assert req.method == "POST"
    assert req.path == "/sms/v2/send"
    assert req.headers["x-api-key"] == API_KEY
    assert req.headers["idempotency-key"] == msg.idempotency_key
    assert req.json == {
        "messages": [
            {
                "destination": "+14155550123",
                "content": {"text": text},
                "clientRef": stable_message_id("gw_", msg.idempotency_key),
                "meta": {"otp": "482915", "key": msg.idempotency_key},
            }
        ],
        "priority": 1,
    }


async def test_falls_back_to_our_stable_id_when_the_answer_has_none(
    server: ProviderServer,
) -> None:
    server.handler = lambda req: Response(status_code=202)
    msg = outbound()
    receipt = await HttpGatewayProvider(config(server)).send(msg)
    assert receipt.message_id == stable_message_id("gw_", msg.idempotency_key)


@pytest.mark.parametrize("status", [400, 404, 410, 422])
async def test_default_permanent_statuses(server: ProviderServer, status: int) -> None:
    server.handler = lambda req: JSONResponse({"error": "invalid destination"}, status_code=status)
    with pytest.raises(PermanentDeliveryError) as caught:
        await HttpGatewayProvider(config(server)).send(outbound())
    assert caught.value.reason == "rejected"


@pytest.mark.parametrize("status", [408, 425, 500, 502, 503, 504])
async def test_default_transient_statuses(server: ProviderServer, status: int) -> None:
    server.handler = lambda req: JSONResponse({"error": "busy"}, status_code=status)
    with pytest.raises(TransientDeliveryError) as caught:
        await HttpGatewayProvider(config(server)).send(outbound())
    assert caught.value.reason == "provider_unavailable"


async def test_429_keeps_retry_after(server: ProviderServer) -> None:
    server.handler = lambda req: Response(status_code=429, headers={"Retry-After": "12"})
    with pytest.raises(RateLimitedError) as caught:
        await HttpGatewayProvider(config(server)).send(outbound())
    assert caught.value.retry_after_s == 12
    assert "retry after 12s" in str(caught.value)


async def test_status_sets_are_configurable_and_auth_failures_permanent(
    server: ProviderServer,
) -> None:
    provider = HttpGatewayProvider(
        config(server, permanent_statuses=frozenset({402}), transient_statuses=frozenset({400}))
    )
    for status, expected in [(402, PermanentDeliveryError), (400, TransientDeliveryError)]:
        server.handler = answer(status)
        with pytest.raises(expected):
            await provider.send(outbound())
    server.handler = answer(401)
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(outbound())
    assert caught.value.reason == "auth_failed"


async def slow(req: Recorded) -> Response:
    await asyncio.sleep(1.0)
    return accepted(req)


async def test_read_timeout_is_outcome_unknown_unless_the_key_is_honoured(
    server: ProviderServer,
) -> None:
    server.handler = slow
    with pytest.raises(OutcomeUnknownError):
        await HttpGatewayProvider(config(server)).send(outbound())

    with pytest.raises(TransientDeliveryError) as caught:
        await HttpGatewayProvider(config(server, honours_idempotency_key=True)).send(outbound())
    assert caught.value.reason == "timeout"
    assert not isinstance(caught.value, OutcomeUnknownError)


def test_bad_templates_fail_at_configuration() -> None:
    with pytest.raises(ValueError, match="placeholder"):
        HttpGatewayConfig(url="https://gw.example", body_template='{"to": "$phone"}')
    with pytest.raises(ValueError, match="not JSON"):
        HttpGatewayConfig(url="https://gw.example", body_template="to=$to")


def test_extract_path() -> None:
    body = {"data": {"messages": [{"id": "a"}, {"id": 7}]}}
    assert extract_path(body, "data.messages.0.id") == "a"
    assert extract_path(body, "data.messages.1.id") == 7
    assert extract_path(body, "data.messages.5.id") is None
    assert extract_path(body, "data.missing") is None
    assert extract_path(None, "id") is None


def test_repr_hides_the_auth_value(server: ProviderServer) -> None:
    assert API_KEY not in repr(config(server))


async def test_sends_sms_only(server: ProviderServer) -> None:
    with pytest.raises(PermanentDeliveryError):
        await HttpGatewayProvider(config(server)).send(outbound(Channel.VOICE))
    assert server.requests == []
