"""The shared httpx helper: Retry-After parsing and client ownership."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from starlette.responses import JSONResponse

from otp.messages.templates import resolve_locale
from providers.base import PermanentDeliveryError
from providers.http import (
    ClientHolder,
    HttpTimeouts,
    log_refusal,
    rate_limited,
    retry_after_seconds,
    server_error,
)
from providers.http_gateway import HttpGatewayConfig, HttpGatewayProvider
from tests.helpers.scripted_provider import ProviderServer, outbound


def test_retry_after_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "5"})) == 5
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": later}), now=now) == 90
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "soon"})) is None
    assert retry_after_seconds(httpx.Response(429)) is None


def test_refusals_worth_retrying_say_the_status_detail_and_delay() -> None:
    busy = httpx.Response(429, headers={"Retry-After": "5"})
    limited = rate_limited("twilio", busy, "code 20429")
    assert str(limited) == "twilio: HTTP 429 code 20429; retry after 5s"
    assert limited.retry_after_s == 5
    down = server_error("meta_whatsapp", httpx.Response(503))
    assert "meta_whatsapp: HTTP 503" in str(down) and "retry after" not in str(down)
    assert down.retry_after_s is None  # type: ignore[attr-defined]


def test_resolve_locale() -> None:
    table = {"en": 1, "pt": 2, "pt-PT": 3, "zh-TW": 4}
    assert resolve_locale("pt_pt", table) == "pt-PT"
    assert resolve_locale("pt-BR", table) == "pt"
    assert resolve_locale("zh-tw", table) == "zh-TW"
    assert resolve_locale("de-AT", table) == "en"


async def test_an_injected_client_is_used_and_left_open(server: ProviderServer) -> None:
    server.handler = lambda req: JSONResponse({"id": "x1"})
    async with httpx.AsyncClient(headers={"User-Agent": "otp-test"}) as client:
        provider = HttpGatewayProvider(
            HttpGatewayConfig(url=f"{server.url}/send", timeouts=HttpTimeouts(read_s=2.0)),
            client=client,
        )
        assert (await provider.send(outbound())).message_id == "x1"
        await provider.aclose()
        assert not client.is_closed
    assert server.requests[0].headers["user-agent"] == "otp-test"


async def test_an_owned_client_is_closed() -> None:
    holder = ClientHolder(None, HttpTimeouts(connect_s=2.0, read_s=3.0))
    client = holder.client
    assert client.timeout == httpx.Timeout(connect=2.0, read=3.0, write=10.0, pool=5.0)
    await holder.aclose()
    assert client.is_closed


def test_a_refusal_is_logged_with_the_destination_masked(caplog: pytest.LogCaptureFixture) -> None:
    message = outbound(to="+14155552671")
    error = PermanentDeliveryError("invalid_number")
    with caplog.at_level(logging.WARNING, logger="otp.providers.test"):
        log_refusal(
            logging.getLogger("otp.providers.test"),
            "twilio",
            "sms",
            message,
            httpx.Response(400),
            error,
            provider_code=21211,
        )
    [record] = caplog.records
    assert record.getMessage() == "twilio refused the sms: invalid_number"
    assert record.to == "+1********71"  # type: ignore[attr-defined]
    assert record.http_status == 400 and record.provider_code == 21211  # type: ignore[attr-defined]
    assert "4155552671" not in caplog.text
