"""The FastAPI application factory: `uvicorn api.main:create_app --factory`.

One Temporal client and one store per process, created in the lifespan unless a
caller (a test, an embedding process) injects them. Secrets and API keys are read
when the app is created so a misconfiguration fails at startup, not on a request.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response
from temporalio.client import Client

from api.auth import ApiKeyAuthenticator
from api.console.mount import install_console
from api.deps import admin_token_digest
from api.exception_handlers import install_exception_handlers, on_unexpected
from api.problems import PROBLEM_JSON
from api.routes import (
    admin,
    admin_alerts,
    admin_lockouts,
    admin_prices,
    admin_provider_accounts,
    admin_routing,
    admin_sandbox_scenarios,
    admin_templates,
    analytics,
    codec,
    erasure,
    health,
    metrics,
    sandbox,
    search,
    twilio_verify,
    verifications,
    webhook_endpoints,
    webhooks,
)
from api.services.risk_caches import RiskCaches
from api.services.verification_workflows import Timeouts
from otp.cost.price_table import default_table
from otp.observability import tracing
from otp.observability.logs import bind
from otp.observability.metrics import HttpMetricsMiddleware
from otp.risk.limits.factory import build_limiter
from otp.settings import Secrets, Settings, get_settings, load_secrets
from otp.store import Store
from otp.store.applications import ensure_default_application
from otp.temporal import connect

logger = logging.getLogger("otp.api")

API_VERSION = "1.0.0"
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

DESCRIPTION = """
Self-hosted OTP verification: start a verification for a phone number or email, the
service delivers a one-time code over SMS, WhatsApp, voice or email with timed fallback
between channels, then check the code the user typed.

**Authentication**: `Authorization: Bearer <key>`. Test keys (`otp_test_...`) never
deliver for real: messages land in the sandbox inbox (`GET /v1/sandbox/messages`).

**Errors** are RFC 9457 problem documents (`application/problem+json`) with `type`,
`title`, `status`, `detail` and `instance`, plus `errors` (validation),
`status_of_verification` (409 on a finished verification) and `retry_after` (429, 503).
"""

TAGS = [
    {"name": "verifications", "description": "Start, check and manage verifications."},
    {"name": "sandbox", "description": "Test mode's simulated phone and mailbox."},
    {
        "name": "webhooks",
        "description": "Delivery receipts from providers (Twilio, Meta). Authenticated by the "
        "provider's signature, not by an API key.",
    },
    {"name": "health", "description": "Probes for orchestrators and load balancers."},
    {
        "name": "twilio-verify-v2",
        "description": "Twilio Verify v2 compatible resources (HTTP Basic auth, form posts, "
        "Twilio's JSON and error codes) over the same verifications as `/v1`.",
    },
]


class _RedactQueryString(logging.Filter):
    """Drop query strings from uvicorn's access log: they can hold a destination."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path, sep, _ = args[2].partition("?")
            if sep:
                record.args = (*args[:2], path + "?[redacted]", *args[3:])
        return True


_ACCESS_FILTER = _RedactQueryString()
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def _document_problems(app: FastAPI) -> None:
    """List error responses as `application/problem+json` (what the API really sends)."""
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = default_openapi()
        for name, path in schema.get("paths", {}).items():
            if name.startswith("/v2/"):
                continue  # the Twilio-compatible routes answer Twilio's JSON errors
            for operation in path.values():
                for code, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if code == "422":
                        # FastAPI's default HTTPValidationError is not what the API sends.
                        response["content"] = {PROBLEM_JSON: {"schema": _PROBLEM_REF}}
                    elif code[:1] in "45" and "application/json" in content:
                        content[PROBLEM_JSON] = content.pop("application/json")
        schemas = schema.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(
    settings: Settings | None = None,
    *,
    client: Client | None = None,
    store: Store | None = None,
    secrets: Secrets | None = None,
    timeouts: Timeouts | None = None,
) -> FastAPI:
    """Build the API. Injected client/store are used as is and never closed by the app."""
    settings = settings or get_settings()
    secrets = secrets or load_secrets(settings)
    authenticator = ApiKeyAuthenticator.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned_store: Store | None = None
        if app.state.store is None:
            owned_store = Store(settings.store_url)
            await owned_store.migrate()
            app.state.store = owned_store
        await ensure_default_application(app.state.store)
        if app.state.limiter is None:
            app.state.limiter = build_limiter(settings, app.state.store)
        if app.state.client is None:
            app.state.client = await connect(settings, secrets)
            logger.info(
                "api connected to temporal",
                extra={
                    "temporal": settings.temporal_target,
                    "namespace": settings.temporal_namespace,
                    "task_queue": settings.task_queue,
                    "api_keys": len(authenticator),
                },
            )
        try:
            yield
        finally:
            limiter, app.state.limiter = app.state.limiter, None
            if limiter is not None:
                await limiter.close()
            watch, app.state.inbox_watch = app.state.inbox_watch, None
            if watch is not None:
                await watch.close()
            if owned_store is not None:
                await owned_store.close()
            tracing.flush()

    app = FastAPI(
        title="OTP Verify API",
        version=API_VERSION,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry would record URLs, query strings (destinations) and
        # validation failures with their input once a provider is installed: off. The
        # spans come from otp.observability.tracing (route templates only) when OTP_TRACING is on.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.secrets = secrets
    app.state.authenticator = authenticator
    app.state.admin_token_digest = admin_token_digest(settings)
    app.state.client = client
    app.state.store = store
    app.state.limiter = (
        None  # one per process: sliding-window limits and counters (otp.risk.limits)
    )
    app.state.inbox_watch = None  # one per process: wakes the sandbox inbox's long polls
    app.state.timeouts = timeouts or Timeouts()
    app.state.risk_caches = RiskCaches()  # one per process: risk blocks, safe lists, prices
    # The price table is read now: a table in another currency than OTP_CURRENCY, or a
    # broken OTP_PRICE_TABLE file, stops the API from starting (ValueError naming the row).
    default_table(currency=settings.currency, path=settings.price_table_path)

    install_exception_handlers(app)

    @app.middleware("http")
    async def request_context(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        incoming = request.headers.get("X-Request-Id", "")
        request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        request.state.request_id = request_id
        bind(request_id=request_id)
        try:
            response = await call_next(request)
        except Exception as exc:  # logged without personal data, answered as a 500 problem
            response = await on_unexpected(request, exc)
        response.headers["X-Request-Id"] = request_id
        if request.url.path.startswith("/v1/"):
            # Verification state and sandbox codes must never sit in a shared cache.
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    # Outermost last: the request's span covers everything, metrics see the final status.
    app.add_middleware(HttpMetricsMiddleware)
    if tracing.enabled(settings):
        tracing.setup(settings, tracing.API_SERVICE)
        app.add_middleware(tracing.HttpTracingMiddleware)

    app.include_router(search.router)
    app.include_router(verifications.router)
    app.include_router(twilio_verify.router)
    app.include_router(twilio_verify.attempts_router)
    app.include_router(analytics.router)
    app.include_router(sandbox.router)
    app.include_router(webhooks.router)
    app.include_router(webhook_endpoints.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(codec.router)
    app.include_router(admin.router)
    app.include_router(admin_lockouts.router)
    app.include_router(admin_sandbox_scenarios.router)
    app.include_router(admin_routing.router)
    app.include_router(admin_provider_accounts.router)
    app.include_router(admin_templates.router)
    app.include_router(admin_prices.router)
    app.include_router(admin_alerts.router)
    app.include_router(erasure.router)
    install_console(app)  # the web console under /console/
    _document_problems(app)

    access_logger = logging.getLogger("uvicorn.access")
    if _ACCESS_FILTER not in access_logger.filters:
        access_logger.addFilter(_ACCESS_FILTER)
    return app
