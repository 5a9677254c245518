"""Exceptions: one per kind of problem the API answers, each carrying the `Problem`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
from pydantic import ValidationError

from otp_client.models import Problem

PROBLEM_PREFIX = "urn:otp:problem:"
VERIFICATION_FINISHED = PROBLEM_PREFIX + "verification-finished"
IDEMPOTENCY_KEY_IN_FLIGHT = PROBLEM_PREFIX + "idempotency-key-in-flight"
IDEMPOTENCY_KEY_REUSED = PROBLEM_PREFIX + "idempotency-key-reused"


class OtpError(Exception):
    """Base of every error the client raises.

    `problem` is the service's RFC 9457 problem document (None when no answer arrived);
    `idempotency_key` is the key the request carried, if any: send the same operation
    again with it later and it still happens at most once.
    """

    def __init__(
        self,
        message: str,
        *,
        problem: Problem | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        super().__init__(message)
        self.problem = problem
        self.idempotency_key = idempotency_key

    @property
    def status_code(self) -> int | None:
        return self.problem.status if self.problem is not None else None


class OtpConnectionError(OtpError):
    """No answer: the connection failed or timed out (after the retries allowed)."""


class OtpTimeoutError(OtpConnectionError):
    """The request timed out; it may or may not have reached the service."""


class UnexpectedResponseError(OtpError):
    """A success answer whose body is not what this operation returns."""


class ApiError(OtpError):
    """The service answered with a problem (any status without a more specific class)."""

    problem: Problem

    def __init__(self, problem: Problem, *, idempotency_key: str | None = None) -> None:
        text = problem.detail or problem.title or f"HTTP {problem.status}"
        super().__init__(
            f"{problem.status} {problem.type}: {text}",
            problem=problem,
            idempotency_key=idempotency_key,
        )

    @property
    def status_code(self) -> int:
        return self.problem.status


class AuthenticationError(ApiError):
    """401: missing, unknown or revoked API key."""


class PermissionDeniedError(ApiError):
    """403: not allowed for this key (mode, channel, risk policy)."""


class NotFoundError(ApiError):
    """404: unknown for this key's application and mode."""


class ConflictError(ApiError):
    """409: the resource is in a state that refuses the request."""


class VerificationFinishedError(ConflictError):
    """409: the verification is finished; `status_of_verification` says how."""

    @property
    def status_of_verification(self) -> str | None:
        return self.problem.status_of_verification


class InvalidRequestError(ApiError):
    """422: the request is invalid; `problem.errors` points at each problem."""


class RateLimitedError(ApiError):
    """429: too many requests or sends; retry after `retry_after` seconds."""

    def __init__(
        self,
        problem: Problem,
        *,
        retry_after: float | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        super().__init__(problem, idempotency_key=idempotency_key)
        self.retry_after = retry_after


class ServerError(ApiError):
    """5xx: the service failed; safe to retry only with an Idempotency-Key or on reads."""


class ServiceUnavailableError(ServerError):
    """503: the service cannot reach its engine now; retry after `retry_after` seconds."""

    def __init__(
        self,
        problem: Problem,
        *,
        retry_after: float | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        super().__init__(problem, idempotency_key=idempotency_key)
        self.retry_after = retry_after


def retry_after_of(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds (delta-seconds or an HTTP date), None if absent or invalid."""
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    if raw.isdigit():
        return float(raw)
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def problem_of(response: httpx.Response) -> Problem:
    """The response's problem document, or one made from its status line."""
    try:
        body = json.loads(response.content) if response.content else None
    except ValueError:
        body = None
    if isinstance(body, dict):
        try:
            problem = Problem.model_validate(body)
        except ValidationError:
            pass
        else:
            if problem.status == 0:
                problem = problem.model_copy(update={"status": response.status_code})
            return problem
    return Problem(title=response.reason_phrase or "", status=response.status_code)


_BY_STATUS: dict[int, type[ApiError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: InvalidRequestError,
}


def error_from_response(response: httpx.Response, *, idempotency_key: str | None) -> ApiError:
    """The exception for a non-2xx answer."""
    problem = problem_of(response)
    status = response.status_code
    retry_after = retry_after_of(response)
    if retry_after is None and problem.retry_after is not None:
        retry_after = float(problem.retry_after)
    if status == 429:
        return RateLimitedError(problem, retry_after=retry_after, idempotency_key=idempotency_key)
    if status == 503:
        return ServiceUnavailableError(
            problem, retry_after=retry_after, idempotency_key=idempotency_key
        )
    if status >= 500:
        return ServerError(problem, idempotency_key=idempotency_key)
    if status == 409 and problem.type == VERIFICATION_FINISHED:
        return VerificationFinishedError(problem, idempotency_key=idempotency_key)
    return _BY_STATUS.get(status, ApiError)(problem, idempotency_key=idempotency_key)
