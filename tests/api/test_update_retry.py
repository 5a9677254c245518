"""Updates the server aborted before accepting them are sent again; nothing else is."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from temporalio.service import RPCError, RPCStatusCode

from api.auth import Principal
from api.service import Timeouts, VerificationService
from otp.domain import CheckResult, Mode, Status

PRINCIPAL = Principal(application_id="default", mode=Mode.TEST)
OK = CheckResult(status=Status.APPROVED, valid=True, attempts_remaining=4)


class _NoClient:
    """The retry path must not touch the client (a final-state read would)."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected client use: {name}")


def _service() -> VerificationService:
    return VerificationService(_NoClient(), task_queue="tq", timeouts=Timeouts())  # type: ignore[arg-type]


def _flaky(failures: list[RPCStatusCode]) -> tuple[list[int], Any]:
    calls: list[int] = []

    async def call() -> CheckResult:
        calls.append(1)
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
