"""OpenTelemetry tracing, off by default (`OTP_TRACING=otlp|console|off`).

When on, one trace follows a verification: the API's HTTP request span, the Temporal
client's StartWorkflow / update spans, the worker's RunWorkflow and RunActivity spans
(`temporalio.contrib.opentelemetry.TracingInterceptor`, on the client the worker is built
from) and each provider HTTP call (`providers.http`).

Spans carry route templates, methods, status codes and provider names only: the HTTP
middleware here records no URL, query string or header (a query string can hold a
destination), and provider spans record the host, never the path or the body.
"""

from __future__ import annotations

import logging
import time

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.client import Interceptor as ClientInterceptor
from temporalio.contrib.opentelemetry import TracingInterceptor

from otp.observability.metrics import ResponseStatus, method_label, route_template
from otp.settings import Settings

logger = logging.getLogger("otp.observability.tracing")

API_SERVICE = "otp-api"
WORKER_SERVICE = "otp-worker"
TRACER_NAME = "otp"
OTLP_TRACES_PATH = "/v1/traces"


def enabled(settings: Settings) -> bool:
    return settings.tracing != "off"


def otlp_traces_url(endpoint: str) -> str:
    """`OTP_OTLP_ENDPOINT` is the collector's base URL (`http://collector:4318`), as
    `OTEL_EXPORTER_OTLP_ENDPOINT` is; the traces path is added unless already there."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith(OTLP_TRACES_PATH) else endpoint + OTLP_TRACES_PATH


def _exporter(settings: Settings) -> SpanExporter:
    if settings.tracing == "console":
        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    if settings.otlp_endpoint:
        return OTLPSpanExporter(endpoint=otlp_traces_url(settings.otlp_endpoint))
    return OTLPSpanExporter()  # OTEL_EXPORTER_OTLP_*ENDPOINT, else http://localhost:4318


def setup(settings: Settings, service_name: str) -> TracerProvider | None:
    """Install this process's tracer provider and exporter; None when tracing is off or a
    provider is already installed (by an embedding process, a test or an earlier call)."""
    if not enabled(settings):
        return None
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    exporter = _exporter(settings)
    processor = (
        SimpleSpanProcessor(exporter)
        if settings.tracing == "console"
        else BatchSpanProcessor(exporter)
    )
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    logger.info(
        "tracing on",
        extra={"exporter": settings.tracing, "service": service_name},
    )
    return provider


def flush() -> None:
    """Export the spans still buffered (at shutdown)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.force_flush()


def client_interceptors(settings: Settings) -> list[ClientInterceptor]:
    """The Temporal client's interceptors: tracing when on (workers built on the client
    inherit it, so workflow and activity spans join the caller's trace)."""
    return [TracingInterceptor()] if enabled(settings) else []


class HttpTracingMiddleware:
    """A server span per HTTP request, named `METHOD /route/{template}` (pure ASGI).

    Continues a caller's W3C trace context (`traceparent`). Records the method, the
    route template and the status code: never the URL, the query string or a header.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._tracer = trace.get_tracer(TRACER_NAME)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = method_label(scope.get("method", ""))
        carrier = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in scope.get("headers", [])
            if key in (b"traceparent", b"tracestate")
        }
        status = ResponseStatus(send)
        with self._tracer.start_as_current_span(
            method,
            context=propagate.extract(carrier),
            kind=SpanKind.SERVER,
            start_time=time.time_ns(),
            attributes={"http.request.method": method},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                await self.app(scope, receive, status)
            except BaseException as exc:
                span.set_attribute("error.type", type(exc).__name__)
                raise
            finally:
                route = route_template(scope)
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status.code)
                if status.code >= 500:
                    span.set_status(StatusCode.ERROR)
