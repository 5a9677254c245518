"""Every error the API answers, in one place: RFC 9457 `application/problem+json`.

Routes raise `ApiProblem` subclasses (or let Temporal errors escape); the handlers
registered by `install_error_handlers` turn them, request validation failures, HTTP
errors (unknown routes, wrong methods) and anything unexpected into problem documents.

Temporal errors are mapped by `problem_from_temporal` using structured fields only:
`RPCError.status`, `WorkflowUpdateFailedError.cause` (an `ApplicationError` whose
`.type` is an `otp.domain.ErrorType`) and its `.details`. Message text is never read.
"""

from __future__ import annotations

import logging
import math
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from temporalio.client import (
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import (
    ApplicationError,
    TemporalError,
    WorkflowAlreadyStartedError,
)
from temporalio.service import RPCError, RPCStatusCode

from otp.domain import ErrorType

logger = logging.getLogger("otp.api")

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:otp:problem:"

# Seconds a client should wait before retrying when Temporal is unreachable or slow.
UNAVAILABLE_RETRY_AFTER_S = 2


def problem_type(slug: str) -> str:
    return PROBLEM_TYPE_PREFIX + slug


class ApiProblem(Exception):
    """An error answered as a problem document. Subclasses fix status, type and title."""

    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal server error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.headers = dict(headers or {})
        self.extensions = {k: v for k, v in extensions.items() if v is not None}

    @property
    def type(self) -> str:
        return problem_type(self.slug)


class Unauthorized(ApiProblem):
    status, slug, title = 401, "unauthorized", "Missing or invalid API key"

    def __init__(self) -> None:
        # One body for missing, malformed and unknown keys: nothing to learn by probing.
        super().__init__(
            "Send a valid API key as `Authorization: Bearer <key>`.",
            headers={"WWW-Authenticate": 'Bearer realm="otp"'},
        )


class Forbidden(ApiProblem):
    status, slug, title = 403, "forbidden", "Not allowed for this API key"


class VerificationNotFound(ApiProblem):
    status, slug, title = 404, "verification-not-found", "Verification not found"

    def __init__(self) -> None:
        super().__init__("No verification with this id exists for this API key.")


class VerificationFinished(ApiProblem):
    status, slug, title = 409, "verification-finished", "Verification already finished"

    def __init__(self, status: str, reason: str | None = None) -> None:
        super().__init__(
            f"The verification is {status}; start a new one.",
            status_of_verification=status,
            reason=reason,
        )


class VerificationAborted(ApiProblem):
    status, slug, title = 409, "verification-aborted", "Verification ended abnormally"

    def __init__(self, execution_status: str) -> None:
        super().__init__(
            "The verification was stopped outside the API (for example by an operator); "
            "start a new one.",
            execution_status=execution_status,
        )


class ResendCooldown(ApiProblem):
    status, slug, title = 429, "resend-cooldown", "Resend requested too soon"

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(
            f"A code was sent moments ago; retry in {retry_after_s} s.",
            headers={"Retry-After": str(retry_after_s)},
            retry_after=retry_after_s,
        )


class MaxSendsReached(ApiProblem):
    status, slug, title = 429, "max-sends-reached", "No sends left for this verification"

    def __init__(self) -> None:
        super().__init__("The maximum number of sends for this verification was reached.")


class NoMoreChannels(ApiProblem):
    status, slug, title = 409, "no-more-channels", "No further channel in the plan"

    def __init__(self) -> None:
        super().__init__("The verification is already on the last step of its channel plan.")


class DeliveryFailed(ApiProblem):
    status, slug, title = 502, "delivery-failed", "The code could not be delivered"


class InvalidRequest(ApiProblem):
    status, slug, title = 422, "invalid-request", "The request is not valid"


class IdempotencyKeyReused(ApiProblem):
    status, slug, title = (
        422,
        "idempotency-key-reused",
        "Idempotency-Key already used with a different request",
    )


class Conflict(ApiProblem):
    status, slug, title = 409, "conflict", "Conflict"


class ServiceUnavailable(ApiProblem):
    status, slug, title = 503, "service-unavailable", "Service temporarily unavailable"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(
            detail or "The verification engine did not answer in time; retry shortly.",
            headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)},
            retry_after=UNAVAILABLE_RETRY_AFTER_S,
            **extensions,
        )


class UpstreamError(ApiProblem):
    status, slug, title = 502, "engine-error", "The verification engine failed"


class InvalidWebhookSignature(ApiProblem):
    status, slug, title = 403, "invalid-signature", "Missing or invalid webhook signature"

    def __init__(self) -> None:
        # One body for missing and wrong signatures: nothing to learn by probing.
        super().__init__("The request is not signed by the provider this endpoint serves.")


class WebhookNotConfigured(ApiProblem):
    status, slug, title = 404, "webhook-not-configured", "Webhook not configured"

    def __init__(self, provider: str) -> None:
        super().__init__(
            f"This service has no {provider} webhook credentials configured.", provider=provider
        )


class PayloadTooLarge(ApiProblem):
    status, slug, title = 413, "payload-too-large", "Request body too large"

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"The body must be at most {limit_bytes} bytes.", limit=limit_bytes)


def field_error(pointer: str, detail: str, code: str = "value_error") -> dict[str, str]:
    """One entry of a 422 problem's `errors`: a JSON pointer into the body (RFC 6901)."""
    return {"pointer": pointer, "detail": detail, "type": code}


def param_error(location: str, name: str, detail: str, code: str = "value_error") -> dict[str, str]:
    """One entry of a 422 problem's `errors` for a query, path or header parameter."""
    return {"in": location, "parameter": name, "detail": detail, "type": code}


def invalid(errors: Sequence[Mapping[str, str]], detail: str | None = None) -> InvalidRequest:
    return InvalidRequest(
        detail or "One or more fields are invalid; see `errors`.", errors=list(errors)
    )


# ----------------------------------------------------------------- Temporal mapping
def _detail_member(details: Sequence[Any], name: str) -> Any:
    first = details[0] if details else None
    return first.get(name) if isinstance(first, Mapping) else None


def problem_from_application_error(err: ApplicationError) -> ApiProblem:
    """Map a business failure raised by the workflow (by its stable `type`)."""
    kind = err.type
    if kind == ErrorType.NOT_FOUND:
        # Someone else's verification looks exactly like one that does not exist.
        return VerificationNotFound()
    if kind == ErrorType.FINISHED:
        status = _detail_member(err.details, "status")
        reason = _detail_member(err.details, "reason")
        return VerificationFinished(
            str(status) if status else "finished", str(reason) if reason else None
        )
    if kind == ErrorType.RESEND_COOLDOWN:
        raw = _detail_member(err.details, "retry_after_s")
        try:
            retry_after = max(1, math.ceil(float(raw)))
        except (TypeError, ValueError):
            retry_after = 1
        return ResendCooldown(retry_after)
    if kind == ErrorType.MAX_SENDS:
        return MaxSendsReached()
    if kind == ErrorType.RESEND_REFUSED:
        return _resend_refused(err.details)
    if kind == ErrorType.NO_MORE_CHANNELS:
        return NoMoreChannels()
    if kind == ErrorType.INVALID_INPUT:
        return InvalidRequest("The verification rejected the request as malformed.")
    return UpstreamError("The verification could not process the request.", error_type=kind)


def _resend_refused(details: Sequence[Any]) -> ApiProblem:
    """A resend the delivery gate refused (the verification is unchanged): 429 with
    `Retry-After` for a full limit, 403 for a block or policy."""
    code = _detail_member(details, "code")
    code = code if isinstance(code, str) and code.isidentifier() else "refused"
    raw = _detail_member(details, "retry_after_s")
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        limit = _detail_member(details, "limit")
        name = limit if isinstance(limit, str) and limit.isidentifier() else "send"
        return RateLimited(name, max(1, math.ceil(raw)), {})
    return RiskPolicyRefused(code)


def problem_from_temporal(exc: BaseException) -> ApiProblem:
    """The one mapping from Temporal client errors to problems (structured fields only)."""
    if isinstance(exc, WorkflowUpdateFailedError):
        cause = exc.cause
        if isinstance(cause, ApplicationError):
            return problem_from_application_error(cause)
        return UpstreamError("The verification could not process the request.")
    if isinstance(exc, (WorkflowUpdateRPCTimeoutOrCancelledError, TimeoutError)):
        return ServiceUnavailable()
    if isinstance(exc, WorkflowAlreadyStartedError):
        return Conflict("A verification with this id already exists.")
    if isinstance(exc, WorkflowQueryRejectedError | WorkflowQueryFailedError):
        return UpstreamError("The verification could not be read.")
    if isinstance(exc, RPCError):
        if exc.status == RPCStatusCode.NOT_FOUND:
            return VerificationNotFound()
        if exc.status in (
            RPCStatusCode.DEADLINE_EXCEEDED,
            RPCStatusCode.UNAVAILABLE,
            RPCStatusCode.RESOURCE_EXHAUSTED,
            RPCStatusCode.CANCELLED,
            # An update aborted before it was accepted (the workflow task it rode on
            # failed): nothing was applied, and the same request can be sent again.
            RPCStatusCode.FAILED_PRECONDITION,
        ):
            return ServiceUnavailable()
        return UpstreamError(
            "The verification engine answered with an error.", rpc_status=exc.status.name
        )
    return ApiProblem()


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, RPCError) and exc.status == RPCStatusCode.NOT_FOUND


# ----------------------------------------------------------------- responses
def problem_response(
    request: Request,
    *,
    status: int,
    type_: str,
    title: str,
    detail: str | None = None,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"type": type_, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body["instance"] = request.url.path
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    if extensions:
        body.update(extensions)
    return JSONResponse(
        body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_JSON
    )


def render_problem(request: Request, problem: ApiProblem) -> JSONResponse:
    return problem_response(
        request,
        status=problem.status,
        type_=problem.type,
        title=problem.title,
        detail=problem.detail,
        headers=problem.headers,
        extensions=problem.extensions,
    )


_LOCATIONS = {"body", "query", "path", "header", "cookie"}


def _validation_entry(error: Mapping[str, Any]) -> dict[str, str]:
    """One pydantic error as a problem `errors` entry; the submitted value is never echoed."""
    loc = [str(part) for part in error.get("loc", ())]
    detail = str(error.get("msg", "invalid value"))
    code = str(error.get("type", "value_error"))
    where = loc[0] if loc and loc[0] in _LOCATIONS else "body"
    rest = loc[1:] if loc and loc[0] in _LOCATIONS else loc
    if where == "body":
        pointer = "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in rest)
        return field_error(pointer if rest else "#", detail, code)
    return param_error(where, ".".join(rest), detail, code)


async def _on_request_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return render_problem(request, invalid([_validation_entry(e) for e in exc.errors()]))


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    titles = {404: "Not found", 405: "Method not allowed", 401: "Unauthorized"}
    detail = exc.detail if isinstance(exc.detail, str) else None
    if exc.status_code == 404 and detail == "Not Found":
        detail = "No such resource."
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": _allowed_methods(request)}
    return problem_response(
        request,
        status=exc.status_code,
        type_="about:blank",
        title=titles.get(exc.status_code, detail or "HTTP error"),
        detail=detail,
        headers=headers,
    )


def _allowed_methods(request: Request) -> str:
    """Every method the path answers to (Starlette names only the first route's)."""
    methods: set[str] = set()
    path = request.url.path
    pending: list[Any] = list(request.app.routes)
    while pending:
        route = pending.pop()
        included = getattr(route, "original_router", None)
        if included is not None:
            pending.extend(included.routes)
            continue
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            methods |= set(getattr(route, "methods", None) or ())
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


async def _on_api_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiProblem)
    return render_problem(request, exc)


async def _on_temporal_error(request: Request, exc: Exception) -> Response:
    problem = problem_from_temporal(exc)
    if problem.status >= 500:
        logger.warning(
            "temporal call failed",
            extra={
                "error": type(exc).__name__,
                "rpc_status": exc.status.name if isinstance(exc, RPCError) else None,
                "path": request.url.path,
                "problem": problem.slug,
            },
        )
    return render_problem(request, problem)


def log_unexpected(request: Request, exc: BaseException) -> None:
    """Log an unexpected error without personal data: class name and frames, no message."""
    logger.error(
        "unhandled error",
        extra={
            "error": type(exc).__name__,
            "method": request.method,
            "path": request.url.path,  # never the query string: it may hold a destination
            "request_id": getattr(request.state, "request_id", None),
            "traceback": "".join(traceback.format_tb(exc.__traceback__)),
        },
    )


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log_unexpected(request, exc)
    return render_problem(request, ApiProblem("An unexpected error occurred."))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_request_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(ApiProblem, _on_api_problem)
    for cls in (TemporalError, RPCError, TimeoutError):
        app.add_exception_handler(cls, _on_temporal_error)
    app.add_exception_handler(Exception, on_unexpected)


# ------------------------------------------------------- applications and admin API
class AdminUnauthorized(ApiProblem):
    status, slug, title = 401, "admin-unauthorized", "Missing or invalid admin token"

    def __init__(self) -> None:
        super().__init__(
            "Send the admin token (OTP_ADMIN_TOKEN) as `Authorization: Bearer <token>`.",
            headers={"WWW-Authenticate": 'Bearer realm="otp-admin"'},
        )


class ApplicationNotFound(ApiProblem):
    status, slug, title = 404, "application-not-found", "Application not found"

    def __init__(self) -> None:
        super().__init__("No application with this id exists.")


class ApiKeyNotFound(ApiProblem):
    status, slug, title = 404, "api-key-not-found", "API key not found"

    def __init__(self) -> None:
        super().__init__("No API key with this id exists for this application.")


class ChannelNotAllowed(ApiProblem):
    status, slug, title = 403, "channel-not-allowed", "Channel not allowed for this application"

    def __init__(self, refused: Sequence[str], allowed: Sequence[str]) -> None:
        super().__init__(
            f"This application may not use {', '.join(refused)}; "
            f"allowed channels: {', '.join(allowed)}.",
            refused_channels=list(refused),
            allowed_channels=list(allowed),
        )


class IdempotencyKeyInFlight(ApiProblem):
    status, slug, title = (
        409,
        "idempotency-key-in-flight",
        "A request with this Idempotency-Key is still being processed",
    )

    def __init__(self) -> None:
        super().__init__(
            "Retry shortly: the first request with this key has not finished yet.",
            headers={"Retry-After": "1"},
            retry_after=1,
        )


# ----------------------------------------------------------------- webhook endpoints
class WebhookEndpointNotFound(ApiProblem):
    status, slug, title = 404, "webhook-endpoint-not-found", "Webhook endpoint not found"

    def __init__(self) -> None:
        super().__init__("No webhook endpoint with this id exists for this API key.")


class WebhookMessageNotFound(ApiProblem):
    status, slug, title = 404, "webhook-message-not-found", "Webhook message not found"

    def __init__(self) -> None:
        super().__init__("This endpoint has no message with this id.")


class CodecForbidden(ApiProblem):
    status, slug, title = 403, "codec-forbidden", "Not allowed to use the codec"

    def __init__(self) -> None:
        super().__init__(
            "Decoding payloads needs the codec token (Authorization: Bearer ...); without "
            "one, only callers on the same machine may use it, and only in dev."
        )


# ----------------------------------------------------------------- fraud controls
class RiskPolicyRefused(ApiProblem):
    status, slug, title = 403, "risk-policy", "Refused by the application's risk policy"

    def __init__(self, reason: str, *, step_index: int | None = None) -> None:
        # Never the destination: the reason and which plan step it concerns.
        super().__init__(
            "The application's fraud controls refuse this destination "
            f"({reason}); no code was sent.",
            reason=reason,
            step_index=step_index,
        )


class RateLimited(ApiProblem):
    status, slug, title = 429, "rate-limited", "Rate limit reached"

    def __init__(self, limit: str, retry_after_s: int, headers: Mapping[str, str]) -> None:
        super().__init__(
            f"The {limit} limit is reached; retry in {retry_after_s} s. No code was sent.",
            headers={**headers, "Retry-After": str(retry_after_s)},
            limit=limit,
            retry_after=retry_after_s,
        )


# --------------------------------------------------------------------- risk blocks
class RiskBlockNotFound(ApiProblem):
    status, slug, title = 404, "risk-block-not-found", "Risk block not found"

    def __init__(self) -> None:
        super().__init__("No risk block with this id exists for this application.")


# ----------------------------------------------------------- lockouts and the safe list
class LockoutNotFound(ApiProblem):
    status, slug, title = 404, "lockout-not-found", "Destination not locked out"

    def __init__(self) -> None:
        super().__init__("This destination is not locked out for this application.")


class SafeListEntryNotFound(ApiProblem):
    status, slug, title = 404, "safe-list-entry-not-found", "Safe list entry not found"

    def __init__(self) -> None:
        super().__init__("No safe list entry with this id exists for this application.")
