"""The one mapping from Temporal client errors to HTTP problems.

Structured fields only: `RPCError.status`, `WorkflowUpdateFailedError.cause` (an
`ApplicationError` whose `.type` is an `otp.domain.ErrorType`) and its `.details`.
Message text is never read. `api.exception_handlers` answers escaped Temporal errors
with it; `api.idempotency` uses it to tell a kept client error from a released 5xx.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from temporalio.client import (
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.problems import (
    ApiProblem,
    Conflict,
    CostCapReached,
    InvalidRequest,
    MaxSendsReached,
    NoMoreChannels,
    RateLimited,
    ResendCooldown,
    RiskPolicyRefused,
    ServiceUnavailable,
    SpendCapReached,
    UpstreamError,
    VerificationFinished,
    VerificationNotFound,
)
from otp.domain import ErrorType


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
    `Retry-After` for a full limit or spend cap, 409 for the verification's own cost cap,
    403 for a block or policy."""
    code = _detail_member(details, "code")
    code = code if isinstance(code, str) and code.isidentifier() else "refused"
    if code == "cost_cap":
        return CostCapReached()
    raw = _detail_member(details, "retry_after_s")
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        limit = _detail_member(details, "limit")
        name = limit if isinstance(limit, str) and limit.isidentifier() else "send"
        if name.startswith("spend_"):
            return SpendCapReached(name, max(1, math.ceil(raw)))
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
