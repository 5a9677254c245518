"""OpenTelemetry: one trace from the API request through the workflow to the provider call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.responses import JSONResponse, Response
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from otp.observability import tracing
from otp.settings import Settings
from otp.store import Store
from otp.temporal import connect
from tests.conftest import TEST_SECRETS, real_worker
from tests.helpers.api import Keys
from tests.helpers.scripted_provider import ProviderServer, Recorded

PHONE = "+14155550123"


@pytest.fixture(scope="session")
def _exporter() -> InMemorySpanExporter:
    """This process's tracer provider (installed once), exporting to memory."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
def spans(_exporter: InMemorySpanExporter) -> InMemorySpanExporter:
    _exporter.clear()
    return _exporter


@pytest.fixture
async def gateway() -> AsyncIterator[ProviderServer]:
    server = ProviderServer()

    def accept(_: Recorded) -> Response:
        return JSONResponse({"id": "gw-msg-1"})

    server.handler = accept
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def wait_for_span(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    for _ in range(300):
        finished = list(exporter.get_finished_spans())
        if any(s.name == name for s in finished):
            return finished
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {name} span in {[s.name for s in exporter.get_finished_spans()]}")


async def test_one_trace_from_the_request_to_the_provider_call(
    spans: InMemorySpanExporter,
    gateway: ProviderServer,
    api_settings: Settings,
    keys: Keys,
    dev_env: WorkflowEnvironment,
    store: Store,
) -> None:
    settings = api_settings.model_copy(
        update={
            "tracing": "otlp",  # the provider installed above is kept: nothing leaves the test
            "temporal_address": dev_env.client.service_client.config.target_host,
            "http_gateway_url": f"{gateway.url}/sms",
            "sms_providers": "http_gateway",
        }
    )
    client = await connect(settings, TEST_SECRETS)
    app = create_app(settings, client=client, store=store)
    async with (
        real_worker(client, settings, store),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api.test"
        ) as api,
    ):
        created = await api.post(
            "/v1/verifications",
            headers=keys.live_headers,
            json={"to": PHONE, "channels": [{"channel": "sms", "timeout_s": 300}]},
        )
        assert created.status_code == 201, created.text
        verification_id = created.json()["id"]
        finished = await wait_for_span(spans, "http_gateway POST")
        canceled = await api.post(
            f"/v1/verifications/{verification_id}/cancel", headers=keys.live_headers
        )
        assert canceled.status_code == 200, canceled.text
    assert len(gateway.requests) == 1

    by_name = {s.name: s for s in finished}
    request = by_name["POST /v1/verifications"]
    chain = [
        request,
        by_name["StartWorkflow:VerificationWorkflow"],
        by_name["RunWorkflow:VerificationWorkflow"],
        by_name["StartActivity:deliver"],
        by_name["RunActivity:deliver"],
        by_name["http_gateway POST"],
    ]
    assert request.context is not None
    trace_id = request.context.trace_id
    assert all(s.context is not None and s.context.trace_id == trace_id for s in chain)
    assert request.parent is None
    assert request.attributes is not None
    assert request.attributes["http.route"] == "/v1/verifications"
    assert request.attributes["http.response.status_code"] == 201
    provider_span = by_name["http_gateway POST"]
    assert provider_span.parent is not None
    assert provider_span.parent.span_id == by_name["RunActivity:deliver"].context.span_id
    assert provider_span.attributes is not None
    assert provider_span.attributes["http.response.status_code"] == 200
    assert provider_span.attributes["server.address"] == "127.0.0.1"
    # No destination in any span's name or attributes (Temporal's spans name the workflow
    # id: that is the verification id, the handle to find its trace by).
    for span in finished:
        text = span.name + repr(dict(span.attributes or {}))
        for secret in (PHONE, PHONE[1:], "/sms"):
            assert secret not in text, (span.name, text)


async def test_nothing_is_traced_when_tracing_is_off(
    spans: InMemorySpanExporter,
    http: httpx.AsyncClient,
    keys: Keys,
    worker: None,
) -> None:
    response = await http.post(
        "/v1/verifications",
        headers=keys.test_headers,
        json={"to": PHONE, "channels": [{"channel": "sms"}]},
    )
    assert response.status_code == 201, response.text
    await http.get(f"/v1/verifications/{response.json()['id']}", headers=keys.test_headers)
    await asyncio.sleep(0.3)
    assert [s.name for s in spans.get_finished_spans()] == []


def test_tracing_is_off_by_default(api_settings: Settings) -> None:
    settings = Settings()
    assert settings.tracing == "off"
    assert not tracing.enabled(settings)
    assert tracing.setup(settings, tracing.API_SERVICE) is None
    assert tracing.client_interceptors(settings) == []
    app = create_app(api_settings)
    classes: list[object] = [m.cls for m in app.user_middleware]
    assert tracing.HttpTracingMiddleware not in classes


def test_otlp_endpoint_is_a_base_url() -> None:
    assert tracing.otlp_traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert tracing.otlp_traces_url("http://c:4318/v1/traces/") == "http://c:4318/v1/traces"
