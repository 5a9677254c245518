"""How a verification ends, and which calls it refuses, without a Temporal server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.exceptions import ApplicationError

from otp.domain import CheckInput, ErrorType, Mode, ScopedInput, Status, VerificationState
from tests.helpers.workflows import APP, make_input
from workflows import outcomes

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def fresh(max_attempts: int = 3) -> VerificationState:
    return VerificationState.initial(make_input(max_attempts=max_attempts), T0)


def refused(call: object, *args: object) -> ApplicationError:
    assert callable(call)
    with pytest.raises(ApplicationError) as error:
        call(*args)
    return error.value


def test_a_verification_ends_once_and_keeps_its_first_ending() -> None:
    state = fresh()
    later = T0 + timedelta(seconds=9)
    assert outcomes.finish(state, Status.APPROVED, outcomes.APPROVED, later)
    assert (state.status, state.reason, state.finished_at) == (
        Status.APPROVED,
        outcomes.APPROVED,
        later,
    )
    assert not outcomes.finish(state, Status.EXPIRED, outcomes.EXPIRED, later + timedelta(hours=1))
    assert (state.status, state.reason, state.finished_at) == (
        Status.APPROVED,
        outcomes.APPROVED,
        later,
    )


def test_a_correct_code_approves_even_on_the_last_attempt() -> None:
    state = fresh(max_attempts=2)
    state.attempts_used = 2
    assert outcomes.after_check(state, matched=True) == (Status.APPROVED, outcomes.APPROVED)


def test_incorrect_codes_use_attempts_until_the_last_one_ends_it() -> None:
    state = fresh(max_attempts=2)
    state.attempts_used = 1
    assert outcomes.after_check(state, matched=False) is None
    state.attempts_used = 2
    assert outcomes.after_check(state, matched=False) == (
        Status.MAX_ATTEMPTS_REACHED,
        outcomes.MAX_ATTEMPTS,
    )


def test_a_check_answers_with_the_status_and_the_attempts_left() -> None:
    state = fresh(max_attempts=3)
    state.attempts_used = 1
    answer = outcomes.check_result(state, matched=False)
    assert (answer.status, answer.valid, answer.attempts_remaining, answer.attempts_used) == (
        Status.PENDING,
        False,
        2,
        1,
    )
    state.attempts_used, state.status = 2, Status.APPROVED
    answer = outcomes.check_result(state, matched=True)
    assert (answer.status, answer.valid, answer.attempts_remaining) == (Status.APPROVED, True, 1)


def test_the_reason_code_adds_a_blocks_short_code() -> None:
    assert outcomes.reason_code(Status.EXPIRED, None) == "expired"
    assert outcomes.reason_code(Status.BLOCKED, "blocked_prefix") == "blocked:blocked_prefix"
    assert outcomes.reason_code(Status.BLOCKED, None) == "blocked"


def test_another_applications_or_modes_call_looks_like_an_unknown_verification() -> None:
    state = fresh()
    outcomes.require_scope(state, ScopedInput(application_id=APP, mode=Mode.TEST))
    for caller in (
        ScopedInput(application_id="app_other", mode=Mode.TEST),
        CheckInput(digest="0" * 64, application_id=APP, mode=Mode.LIVE),
    ):
        error = refused(outcomes.require_scope, state, caller)
        assert error.type == ErrorType.NOT_FOUND and error.details == ()
        assert refused(outcomes.require_caller, state, caller).type == ErrorType.NOT_FOUND


def test_a_finished_verification_refuses_calls_with_its_status_and_reason() -> None:
    state = fresh()
    outcomes.require_open(state)
    outcomes.finish(state, Status.CANCELED, outcomes.CANCELED, T0)
    error = refused(outcomes.require_open, state)
    assert error.type == ErrorType.FINISHED and error.non_retryable
    assert error.details == ({"status": "canceled", "reason": outcomes.CANCELED},)
    caller = ScopedInput(application_id=APP, mode=Mode.TEST)
    assert refused(outcomes.require_caller, state, caller).type == ErrorType.FINISHED


@pytest.mark.parametrize("digest", ["", "0" * 63, "0" * 65, "A" * 64, "g" * 64, " " + "0" * 63])
def test_a_malformed_digest_is_refused(digest: str) -> None:
    assert refused(outcomes.require_digest, digest).type == ErrorType.INVALID_INPUT


def test_a_well_formed_digest_passes() -> None:
    outcomes.require_digest("0123456789abcdef" * 4)
