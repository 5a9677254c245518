"""Updates the server aborted or was too busy to take are sent again, under the same update
id (so Temporal applies each at most once); nothing else is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from api.auth import Principal
from api.problems import VerificationFinished
from api.services.verification_workflows import Timeouts, VerificationService
from otp.domain import CheckResult, Mode, Status, VerificationState

PRINCIPAL = Principal(application_id="default", mode=Mode.TEST)
OK = CheckResult(status=Status.APPROVED, valid=True, attempts_remaining=4)


class _NoClient:
    """The retry path must not touch the client (a final-state read would)."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected client use: {name}")


def _service() -> VerificationService:
    return VerificationService(_NoClient(), task_queue="tq", timeouts=Timeouts())  # type: ignore[arg-type]


def _flaky(failures: list[RPCStatusCode]) -> tuple[list[str], Any]:
    calls: list[str] = []

    async def call(update_id: str) -> CheckResult:
        calls.append(update_id)
        if len(calls) <= len(failures):
            raise RPCError("misleading text", failures[len(calls) - 1], b"")
        return OK

    return calls, call


async def test_update_aborted_before_acceptance_is_sent_again() -> None:
    calls, call = _flaky([RPCStatusCode.FAILED_PRECONDITION] * 2)
    result = await _service()._update(None, PRINCIPAL, call, timedelta(seconds=1))  # type: ignore[arg-type]
    assert result == OK
    assert len(calls) == 3


async def test_update_aborted_every_time_gives_up_with_the_rpc_error() -> None:
    calls, call = _flaky([RPCStatusCode.FAILED_PRECONDITION] * 10)
    with pytest.raises(RPCError) as info:
        await _service()._update(None, PRINCIPAL, call, timedelta(seconds=1))  # type: ignore[arg-type]
    assert info.value.status == RPCStatusCode.FAILED_PRECONDITION
    assert len(calls) == 4


@pytest.mark.parametrize("status", [RPCStatusCode.INTERNAL, RPCStatusCode.INVALID_ARGUMENT])
async def test_other_rpc_errors_are_not_retried(status: RPCStatusCode) -> None:
    calls, call = _flaky([status])
    with pytest.raises(RPCError):
        await _service()._update(None, PRINCIPAL, call, timedelta(seconds=1))  # type: ignore[arg-type]
    assert len(calls) == 1


class _ClosedHandle:
    """A verification that ended while the update could not get through."""

    def __init__(self, status: WorkflowExecutionStatus | None) -> None:
        self.status = status

    async def describe(self, **_: Any) -> Any:
        return SimpleNamespace(status=self.status)

    async def result(self, **_: Any) -> VerificationState:
        now = datetime.now(UTC)
        return VerificationState(
            application_id=PRINCIPAL.application_id,
            mode=PRINCIPAL.mode,
            status=Status.MAX_ATTEMPTS_REACHED,
            reason="too many incorrect codes were submitted",
            created_at=now,
            expires_at=now,
            max_attempts=5,
            max_sends=5,
        )


@pytest.mark.parametrize(
    "error",
    [
        RPCError("busy", RPCStatusCode.RESOURCE_EXHAUSTED, b""),
        RPCError("aborted", RPCStatusCode.UNAVAILABLE, b""),
        WorkflowUpdateRPCTimeoutOrCancelledError(),
    ],
)
async def test_a_busy_update_on_a_finished_verification_names_its_final_status(
    error: Exception,
) -> None:
    async def call(update_id: str) -> CheckResult:
        raise error

    handle = _ClosedHandle(WorkflowExecutionStatus.COMPLETED)
    with pytest.raises(VerificationFinished) as info:
        await _service()._update(handle, PRINCIPAL, call, timedelta(seconds=1))  # type: ignore[arg-type]
    assert info.value.extensions["status_of_verification"] == "max_attempts_reached"


async def test_every_try_of_one_update_carries_the_same_id() -> None:
    calls, call = _flaky([RPCStatusCode.FAILED_PRECONDITION] * 2)
    await _service()._update(None, PRINCIPAL, call, timedelta(seconds=1))  # type: ignore[arg-type]
    assert len(set(calls)) == 1 and calls[0].startswith("upd_")
    calls, call = _flaky([RPCStatusCode.FAILED_PRECONDITION])
    await _service()._update(None, PRINCIPAL, call, timedelta(seconds=1), "chk_given")  # type: ignore[arg-type]
    assert calls == ["chk_given", "chk_given"]


@pytest.mark.parametrize("status", [RPCStatusCode.UNAVAILABLE, RPCStatusCode.RESOURCE_EXHAUSTED])
async def test_a_busy_update_on_a_running_verification_is_sent_again(
    status: RPCStatusCode,
) -> None:
    """E.g. "workflow update was aborted" (UNAVAILABLE) while the workflow runs on."""
    calls, call = _flaky([status] * 2)
    result = await _service()._update(
        _ClosedHandle(WorkflowExecutionStatus.RUNNING),  # type: ignore[arg-type]
        PRINCIPAL,
        call,
        timedelta(seconds=1),
    )
    assert result == OK
    assert len(calls) == 3 and len(set(calls)) == 1


async def test_a_running_verification_busy_every_time_stays_retryable() -> None:
    calls, call = _flaky([RPCStatusCode.RESOURCE_EXHAUSTED] * 10)
    with pytest.raises(RPCError):
        await _service()._update(
            _ClosedHandle(WorkflowExecutionStatus.RUNNING),  # type: ignore[arg-type]
            PRINCIPAL,
            call,
            timedelta(seconds=1),
        )
    assert len(calls) == 4
