"""Prometheus metrics: the API's (prometheus-client) and the worker's (Temporal runtime meter).

The API serves `GET /metrics` from this process's prometheus-client registry. The worker
records through the Temporal runtime's metric meter, so the one Prometheus endpoint the
runtime serves (`OTP_WORKER_METRICS_ADDRESS`) shows ours next to the SDK's own
`temporal_*` metrics.

Every label set is bounded: route templates (never raw paths), enum values, provider
names, two-letter countries. Never a destination, a code, a key or an id.
"""

from __future__ import annotations

import re
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio import activity
from temporalio.client import Client
from temporalio.common import MetricMeter
from temporalio.exceptions import ApplicationError
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from otp.domain import (
    ACTIVITY_DELIVER,
    ACTIVITY_RECORD,
    DeliverInput,
    DeliverResult,
    DeliveryStatus,
    ErrorType,
    Mode,
    RecordVerificationInput,
    Status,
    VerificationState,
)

# ------------------------------------------------------------------------------ labels
_COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

UNMATCHED_ROUTE = "unmatched"


def country_label(country: str | None) -> str:
    """A region code as is, `none` for none (email), `other` for anything unexpected."""
    if not country:
        return "none"
    return country if _COUNTRY_RE.match(country) else "other"


def name_label(value: str | None) -> str:
    """A provider or enum name as is; anything that does not look like one is `other`."""
    if not value:
        return "none"
    return value if _NAME_RE.match(value) else "other"


def method_label(method: str) -> str:
    return method if method in _METHODS else "other"


def route_template(scope: Scope) -> str:
    """The matched route's path template (`/v1/verifications/{verification_id}`)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE


class ResponseStatus:
    """An ASGI `send` that notes the status of the response it starts (500 until one does)."""

    def __init__(self, send: Send) -> None:
        self.code = 500
        self._send = send

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.code = int(message["status"])
        await self._send(message)


# ------------------------------------------------------------------------------ API side
HTTP_REQUESTS = Counter(
    "otp_http_requests",
    "HTTP requests answered by the API, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "otp_http_request_duration_seconds",
    "Time the API took to answer, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
VERIFICATIONS_STARTED = Counter(
    "otp_verifications_started",
    "Verifications started (idempotent replays excluded), by first channel, country and mode.",
    ["channel", "country", "mode"],
)
CHECKS = Counter(
    "otp_checks",
    "Codes checked: approved, incorrect, or refused by the risk policy before the check.",
    ["result"],
)
RECEIPTS = Counter(
    "otp_delivery_receipts",
    "Genuine provider delivery receipts received, by provider and delivery status.",
    ["provider", "status"],
)

CHECK_RESULTS = ("approved", "incorrect", "refused")


def count_started(channel: str, country: str | None, mode: Mode) -> None:
    VERIFICATIONS_STARTED.labels(name_label(channel), country_label(country), mode.value).inc()


def count_check(result: str) -> None:
    CHECKS.labels(result if result in CHECK_RESULTS else "other").inc()


def count_receipt(provider: str, status: DeliveryStatus) -> None:
    RECEIPTS.labels(name_label(provider), status.value).inc()


def exposition() -> tuple[bytes, str]:
    """This process's metrics in the Prometheus text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class HttpMetricsMiddleware:
    """Counts and times every HTTP request by method, route template and status (pure ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = ResponseStatus(send)
        try:
            await self.app(scope, receive, status)
        finally:
            method = method_label(scope.get("method", ""))
            route = route_template(scope)
            HTTP_REQUESTS.labels(method, route, str(status.code)).inc()
            HTTP_DURATION.labels(method, route).observe(time.perf_counter() - started)


# --------------------------------------------------------------------------- worker side
# Histogram buckets (seconds) of the worker's own histograms.
TIME_TO_VERIFY_BUCKETS = (1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
TIME_TO_DELIVER_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

SEND_OUTCOMES = ("sent", "failed", "blocked")


def worker_runtime(address: str | None) -> Runtime | None:
    """A Temporal runtime serving Prometheus metrics at `address` (`host:port`), or None.

    Counters get the `_total` suffix and durations are reported in seconds, as Prometheus
    expects; the SDK's own metrics (`temporal_*`) share the endpoint.
    """
    if not address:
        return None
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=address,
                counters_total_suffix=True,
                durations_as_seconds=True,
                histogram_bucket_overrides={
                    "otp_time_to_verify_seconds": TIME_TO_VERIFY_BUCKETS,
                    "otp_time_to_deliver_seconds": TIME_TO_DELIVER_BUCKETS,
                },
            )
        )
    )


def runtime_of(client: Client) -> Runtime:
    """The runtime a worker built on `client` runs in (the default one unless configured)."""
    return client.service_client.config.runtime or Runtime.default()


def _seconds(start: Any, end: Any) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, float((end - start).total_seconds()))


class WorkerMetrics:
    """The worker's own metrics, recorded through a Temporal metric meter."""

    def __init__(self, meter: MetricMeter) -> None:
        self.finished = meter.create_counter(
            "otp_verifications_finished",
            "Verifications that reached a terminal status, by status, channel and country.",
        )
        self.sends = meter.create_counter(
            "otp_sends",
            "Delivery attempts by provider, channel and outcome (sent, failed, blocked).",
        )
        self.time_to_verify = meter.create_histogram_float(
            "otp_time_to_verify_seconds",
            "From start to approval, by the channel the code was approved on.",
            "s",
        )
        self.time_to_deliver = meter.create_histogram_float(
            "otp_time_to_deliver_seconds",
            "From start to the first delivered receipt, by that delivery's channel.",
            "s",
        )

    def send(self, *, provider: str, channel: str, outcome: str) -> None:
        self.sends.add(
            1,
            {
                "provider": name_label(provider),
                "channel": name_label(channel),
                "outcome": outcome if outcome in SEND_OUTCOMES else "other",
            },
        )

    def finish(self, state: VerificationState, country: str | None) -> None:
        """A verification's final record: its terminal status and its timings."""
        if not state.status.is_terminal:
            return
        plan = state.channels
        current = plan[min(state.current_step, len(plan) - 1)].channel.value if plan else "none"
        self.finished.add(
            1,
            {
                "status": state.status.value,
                "channel": current,
                "country": country_label(country),
            },
        )
        if state.status is Status.APPROVED:
            took = _seconds(state.created_at, state.finished_at)
            if took is not None:
                self.time_to_verify.record(took, {"channel": current})
        delivered = [d for d in state.deliveries if d.status is DeliveryStatus.DELIVERED]
        if delivered:
            first = min(delivered, key=lambda d: d.updated_at)
            took = _seconds(state.created_at, first.updated_at)
            if took is not None:
                self.time_to_deliver.record(took, {"channel": first.channel.value})


def _send_outcome(error: BaseException) -> str | None:
    """A delivery's failure as a send outcome (None: not a send, e.g. an expired code)."""
    if not isinstance(error, ApplicationError):
        return "failed"
    if error.type == ErrorType.BLOCKED:
        return "blocked"
    if error.type in (ErrorType.PERMANENT_DELIVERY, ErrorType.TRANSIENT_DELIVERY):
        return "failed"
    return None


class _MetricsActivityInbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, metrics: WorkerMetrics) -> None:
        super().__init__(next)
        self._metrics = metrics

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        name = activity.info().activity_type
        if name not in _OBSERVED:
            return await self.next.execute_activity(input)
        arg = input.args[0] if input.args else None
        try:
            result = await self.next.execute_activity(input)
        except BaseException as error:
            if isinstance(arg, DeliverInput):
                outcome = _send_outcome(error)
                if outcome is not None:
                    self._metrics.send(
                        provider=_planned_provider(arg), channel=arg.channel.value, outcome=outcome
                    )
            raise
        if isinstance(arg, DeliverInput) and isinstance(result, DeliverResult):
            self._metrics.send(provider=result.provider, channel=arg.channel.value, outcome="sent")
        elif isinstance(arg, RecordVerificationInput) and arg.final:
            self._metrics.finish(arg.state, arg.country)
        return result


_OBSERVED = frozenset({ACTIVITY_DELIVER, ACTIVITY_RECORD})


def _planned_provider(input: DeliverInput) -> str:
    """The provider a failed attempt went to: test mode is always the sandbox."""
    if input.mode is Mode.TEST:
        return "sandbox"
    return input.provider or "default"


class WorkerMetricsInterceptor(Interceptor):
    """Counts sends (from the deliver activity) and finished verifications (from the final
    record activity) once each activity attempt has answered."""

    def __init__(self, metrics: WorkerMetrics) -> None:
        self.metrics = metrics

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _MetricsActivityInbound(next, self.metrics)


def worker_interceptor(client: Client) -> WorkerMetricsInterceptor:
    """The metrics interceptor for a worker on `client` (a no-op meter without metrics)."""
    return WorkerMetricsInterceptor(WorkerMetrics(runtime_of(client).metric_meter))
