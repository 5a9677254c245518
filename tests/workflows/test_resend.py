"""ResendGate: sends, the resend cooldown and its backoff, without a Temporal server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.exceptions import ApplicationError

from otp.domain import DeliveryKind, ErrorType, VerificationState
from tests.helpers.workflows import make_input
from workflows.delivery import Refusal
from workflows.resend import MAX_COOLDOWN_S, ResendGate, refusal_error

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def gate(
    cooldown_s: int = 30, backoff: float = 1.0, max_sends: int = 5
) -> tuple[ResendGate, VerificationState]:
    state = VerificationState.initial(make_input(max_sends=max_sends), T0)
    return ResendGate(state, cooldown_s=cooldown_s, backoff=backoff), state


def refusal(gate: ResendGate, now: datetime, *, busy: bool = False) -> ApplicationError:
    with pytest.raises(ApplicationError) as refused:
        gate.require_allowed(now, busy=busy)
    return refused.value


def test_every_send_counts_and_restarts_the_cooldown() -> None:
    resends, state = gate(cooldown_s=30)
    resends.count(DeliveryKind.STEP, T0)
    assert (state.sends, resends.resends, state.next_resend_at) == (1, 0, at(30))
    resends.count(DeliveryKind.RESEND, at(40))
    assert (state.sends, resends.resends, state.next_resend_at) == (2, 1, at(70))


def test_the_cooldown_grows_by_the_backoff_for_each_resend() -> None:
    resends, state = gate(cooldown_s=30, backoff=2.0)
    resends.count(DeliveryKind.STEP, T0)
    assert state.next_resend_at == at(30)
    resends.count(DeliveryKind.RESEND, at(30))
    assert state.next_resend_at == at(30 + 60)
    resends.count(DeliveryKind.RESEND, at(90))
    assert state.next_resend_at == at(90 + 120)
    resends.count(DeliveryKind.STEP, at(300))  # a step's own send does not grow it
    assert state.next_resend_at == at(300 + 120)


def test_a_backoff_of_one_keeps_the_cooldown_constant() -> None:
    resends, _ = gate(cooldown_s=45, backoff=1.0)
    for _ in range(4):
        resends.count(DeliveryKind.RESEND, T0)
    assert resends.cooldown_s() == 45


def test_the_cooldown_is_capped_at_an_hour_or_the_base_if_longer() -> None:
    resends, _ = gate(cooldown_s=600, backoff=2.0)
    resends.resends = 2
    assert resends.cooldown_s() == 2400
    resends.resends = 3  # 4800 s
    assert resends.cooldown_s() == MAX_COOLDOWN_S == 3600
    long_base, _ = gate(cooldown_s=5000, backoff=2.0)
    long_base.resends = 3
    assert long_base.cooldown_s() == 5000


def test_a_resend_waits_for_the_cooldown() -> None:
    resends, _ = gate(cooldown_s=30)
    resends.count(DeliveryKind.STEP, T0)
    early = refusal(resends, at(10.5))
    assert early.type == ErrorType.RESEND_COOLDOWN and early.non_retryable
    assert early.details == ({"retry_after_s": 20},)  # 19.5 s rounded up
    assert refusal(resends, at(29.9)).details == ({"retry_after_s": 1},)
    resends.require_allowed(at(30), busy=False)


def test_a_resend_before_any_send_waits_a_whole_cooldown() -> None:
    resends, _ = gate(cooldown_s=30)
    assert refusal(resends, T0).details == ({"retry_after_s": 30},)


def test_a_resend_while_a_send_is_busy_is_refused_even_after_the_cooldown() -> None:
    resends, _ = gate(cooldown_s=30)
    resends.count(DeliveryKind.STEP, T0)
    busy = refusal(resends, at(100), busy=True)
    assert busy.type == ErrorType.RESEND_COOLDOWN
    assert busy.details == ({"retry_after_s": 1},)


def test_the_send_limit_comes_before_the_cooldown() -> None:
    resends, state = gate(cooldown_s=30, max_sends=2)
    resends.count(DeliveryKind.STEP, T0)
    assert resends.sends_remaining == 1
    resends.count(DeliveryKind.RESEND, at(30))
    assert resends.sends_remaining == 0
    refused = refusal(resends, at(31))
    assert refused.type == ErrorType.MAX_SENDS and refused.non_retryable
    state.sends = 7  # more than the limit (an older history): never negative
    assert resends.sends_remaining == 0


def test_a_snapshot_puts_the_counters_and_the_cooldown_back() -> None:
    resends, state = gate(cooldown_s=30, backoff=2.0)
    resends.count(DeliveryKind.STEP, T0)
    before = resends.snapshot()
    resends.count(DeliveryKind.RESEND, at(30))
    resends.restore(before)
    assert (state.sends, resends.resends, state.next_resend_at) == (1, 0, at(30))
    assert resends.cooldown_s() == 30


def test_a_refused_resend_says_which_limit_and_when_never_why() -> None:
    error = refusal_error(Refusal(reason="prefix blocked", code="blocked_prefix", retry_after_s=60))
    assert error.type == ErrorType.RESEND_REFUSED and error.non_retryable
    assert error.details == ({"code": "blocked_prefix", "limit": None, "retry_after_s": 60},)
    assert "prefix blocked" not in str(error.details)
    assert refusal_error(None).details == ({"code": None, "limit": None, "retry_after_s": None},)
