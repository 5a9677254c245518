"""The Temporal-to-HTTP mapping (structured fields only) and the route-level problem paths."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import httpx
import pytest
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.auth import Principal
from api.deps import get_service
from api.main import create_app
from api.temporal_errors import problem_from_temporal
from otp.domain import (
    Channel,
    DeliveryAttempt,
    DeliveryKind,
    DeliveryStatus,
    ErrorType,
    ResendResult,
)
from otp.settings import Settings
from otp.store import Store
from tests.helpers.api import Keys


def _update_failed(error: ApplicationError) -> WorkflowUpdateFailedError:
    return WorkflowUpdateFailedError(error)


def _rpc(status: RPCStatusCode) -> RPCError:
    # The message is deliberately misleading: the mapping must read the status only.
    return RPCError("workflow execution already completed", status, b"")


@pytest.mark.parametrize(
    ("error", "status", "slug"),
    [
        (ApplicationError("x", type=ErrorType.NOT_FOUND), 404, "verification-not-found"),
        (
            ApplicationError("x", {"status": "expired", "reason": "r"}, type=ErrorType.FINISHED),
            409,
            "verification-finished",
        ),
        (
            ApplicationError("x", {"retry_after_s": 17}, type=ErrorType.RESEND_COOLDOWN),
            429,
            "resend-cooldown",
        ),
        (ApplicationError("x", type=ErrorType.MAX_SENDS), 429, "max-sends-reached"),
        (ApplicationError("x", type=ErrorType.NO_MORE_CHANNELS), 409, "no-more-channels"),
        (ApplicationError("x", type=ErrorType.INVALID_INPUT), 422, "invalid-request"),
        (ApplicationError("VerificationFinished", type="Surprise"), 502, "engine-error"),
    ],
)
def test_update_failures_map_by_type(error: ApplicationError, status: int, slug: str) -> None:
    problem = problem_from_temporal(_update_failed(error))
    assert problem.status == status
    assert problem.slug == slug


def test_update_failure_details_become_members_and_headers() -> None:
    finished = problem_from_temporal(
        _update_failed(
            ApplicationError("x", {"status": "expired", "reason": "late"}, type=ErrorType.FINISHED)
        )
    )
    assert finished.extensions == {"status_of_verification": "expired", "reason": "late"}
    cooldown = problem_from_temporal(
        _update_failed(ApplicationError("x", {"retry_after_s": 17}, type=ErrorType.RESEND_COOLDOWN))
    )
    assert cooldown.headers == {"Retry-After": "17"}
    assert cooldown.extensions["retry_after"] == 17
    max_sends = problem_from_temporal(
        _update_failed(ApplicationError("x", type=ErrorType.MAX_SENDS))
    )
    assert "Retry-After" not in max_sends.headers


def test_a_refused_resend_is_429_for_a_full_limit_and_403_for_a_block() -> None:
    limit = problem_from_temporal(
        _update_failed(
            ApplicationError(
                "x",
                {"code": "destination_limit", "limit": "destination", "retry_after_s": 42},
                type=ErrorType.RESEND_REFUSED,
            )
        )
    )
    assert (limit.status, limit.slug) == (429, "rate-limited")
    assert limit.headers["Retry-After"] == "42"
    assert limit.extensions == {"limit": "destination", "retry_after": 42}
    block = problem_from_temporal(
        _update_failed(
            ApplicationError(
                "x",
                {"code": "prefix_blocked", "limit": None, "retry_after_s": None},
                type=ErrorType.RESEND_REFUSED,
            )
        )
    )
    assert (block.status, block.slug) == (403, "risk-policy")
    assert "Retry-After" not in block.headers
    assert block.extensions == {"reason": "prefix_blocked"}
    bare = problem_from_temporal(_update_failed(ApplicationError("x", type="ResendRefused")))
    assert (bare.status, bare.extensions) == (403, {"reason": "refused"})


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (_rpc(RPCStatusCode.NOT_FOUND), 404),
        (_rpc(RPCStatusCode.DEADLINE_EXCEEDED), 503),
        (_rpc(RPCStatusCode.UNAVAILABLE), 503),
        (_rpc(RPCStatusCode.FAILED_PRECONDITION), 503),
        (_rpc(RPCStatusCode.INTERNAL), 502),
        (WorkflowUpdateRPCTimeoutOrCancelledError(), 503),
        (TimeoutError(), 503),
    ],
)
def test_rpc_errors_map_by_status(error: Exception, status: int) -> None:
    problem = problem_from_temporal(error)
    assert problem.status == status
    if status == 503:
        assert problem.headers["Retry-After"]


class _FailedResendService:
    async def resend(self, verification_id: str, principal: Principal) -> ResendResult:
        now = datetime.now(UTC)
        return ResendResult(
            delivery=DeliveryAttempt(
                step_index=0,
                kind=DeliveryKind.RESEND,
                channel=Channel.SMS,
                provider="sandbox",
                status=DeliveryStatus.FAILED,
                error_type=ErrorType.PERMANENT_DELIVERY,
                started_at=now,
                updated_at=now,
            ),
            sends_remaining=3,
            next_resend_at=now,
        )

    async def state(self, verification_id: str, principal: Principal) -> None:
        # Personal data in an exception message must not reach the log or the answer.
        leaked = "+1415555" + "0123"
        raise RuntimeError(f"{leaked} secret detail")


async def test_failed_resend_is_502_and_unexpected_errors_are_500_without_details(
    api_settings: Settings, store: Store, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(api_settings, client=object(), store=store)  # type: ignore[arg-type]
    app.dependency_overrides[get_service] = _FailedResendService
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://api.test",
    ) as http:
        vid = "ver_" + "a" * 26
        resend = await http.post(f"/v1/verifications/{vid}/resend", headers=keys.test_headers)
        assert resend.status_code == 502, resend.text
        assert resend.headers["content-type"] == "application/problem+json"
        assert resend.json()["error_type"] == ErrorType.PERMANENT_DELIVERY
        assert resend.json()["delivery"]["status"] == "failed"

        with caplog.at_level(logging.ERROR, logger="otp.api"):
            boom = await http.get(f"/v1/verifications/{vid}", headers=keys.test_headers)
        assert boom.status_code == 500
        assert boom.headers["content-type"] == "application/problem+json"
        assert "14155550123" not in boom.text
        assert boom.json()["request_id"] == boom.headers["x-request-id"]
        logged = [r for r in caplog.records if r.getMessage() == "unhandled error"]
        assert logged and logged[0].__dict__["error"] == "RuntimeError"
        assert all("14155550123" not in str(r.__dict__) for r in caplog.records)
