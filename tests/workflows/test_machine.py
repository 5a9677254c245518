"""VerificationMachine: a verification's state and its changes, without a Temporal server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.exceptions import ActivityError, ApplicationError, RetryState

from otp.domain import (
    Channel,
    DeliverResult,
    DeliveryKind,
    DeliveryReceiptInput,
    DeliveryStatus,
    ErrorType,
    EventType,
    Mode,
    ScopedInput,
    Status,
)
from tests.helpers.workflows import APP, make_input, plan
from workflows import outcomes
from workflows.delivery import Try
from workflows.machine import VerificationMachine
from workflows.steps import FAILED_REASON, Advance, Deliver, Finish

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RUN = ("ver_1", "run")
SCOPE = ScopedInput(application_id=APP, mode=Mode.TEST)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def machine(*steps: tuple[Channel, int], **overrides: object) -> VerificationMachine:
    input = make_input(plan(*(steps or ((Channel.SMS, 60), (Channel.EMAIL, 60)))), **overrides)
    issued = VerificationMachine(input, T0)
    issued.issued("d" * 64, "n0nce")
    return issued


def first_try(
    m: VerificationMachine, index: int = 0, kind: DeliveryKind = DeliveryKind.STEP
) -> Try:
    _, failover = m.start_delivery(index, kind, at(1), RUN)
    tried = failover.next(at(1))
    assert tried is not None
    return tried


def result(message_id: str = "msg-1") -> DeliverResult:
    return DeliverResult(provider="sandbox", provider_message_id=message_id)


def activity_error(type: str, *details: object) -> ActivityError:
    err = ActivityError(
        "failed",
        scheduled_event_id=1,
        started_event_id=2,
        identity="w",
        activity_type="deliver",
        activity_id="1",
        retry_state=RetryState.NON_RETRYABLE_FAILURE,
    )
    err.__cause__ = ApplicationError("failed", *details, type=type)
    return err


def receipt(status: DeliveryStatus, message_id: str = "msg-1") -> DeliveryReceiptInput:
    return DeliveryReceiptInput(provider="sandbox", provider_message_id=message_id, status=status)


def logged(m: VerificationMachine) -> list[tuple[str, EventType]]:
    return [(e.key, e.type) for e in m.log.entries]


def test_the_code_issue_is_recorded_without_the_code() -> None:
    m = VerificationMachine(make_input(), T0)
    assert not m.state.code_issued and m.digest is None
    m.issued("d" * 64, "n0nce")
    assert m.state.code_issued and (m.digest, m.nonce) == ("d" * 64, "n0nce")


def test_a_verification_ends_once_on_the_step_it_reached() -> None:
    m = machine()
    m.advance(1, "delivery failed", at(5))
    m.finish(Status.CANCELED, outcomes.CANCELED, at(6))
    m.finish(Status.EXPIRED, outcomes.EXPIRED, at(7))
    assert m.terminal and m.wake and m.state.status is Status.CANCELED
    end = m.log.entries[-1]
    assert (end.type, end.step_index, end.channel) == (EventType.CANCELED, 1, Channel.EMAIL)
    assert [k for k, _ in logged(m)].count("terminal") == 1


def test_the_expiry_ends_a_check_that_comes_too_late() -> None:
    m = machine(ttl_s=60)
    m.expire_if_due(at(59))
    assert not m.terminal
    m.expire_if_due(at(60))
    assert (m.state.status, m.state.reason) == (Status.EXPIRED, outcomes.EXPIRED)


def test_moving_on_notes_the_fallback_unless_the_plan_is_over() -> None:
    m = machine()
    assert m.advance(1, "requested", at(2))
    assert logged(m)[-1] == ("fallback:1", EventType.FALLBACK)
    assert not m.advance(2, "timeout", at(3))
    assert logged(m)[-1] == ("fallback:1", EventType.FALLBACK)
    assert m.plan.reached_channel is Channel.EMAIL


def test_a_delivery_counts_its_send_and_restarts_the_step_timer() -> None:
    m = machine(resend_cooldown_s=30)
    tried = first_try(m)
    assert m.state.sends == 1 and m.state.next_resend_at == at(31)
    assert m.plan.deadline == at(61)
    assert m.state.deliveries == [tried.attempt]
    assert tried.input.nonce == "n0nce"


def test_no_delivery_before_the_code_is_issued() -> None:
    m = VerificationMachine(make_input(), T0)
    with pytest.raises(ApplicationError) as refused:
        m.start_delivery(0, DeliveryKind.STEP, T0, RUN)
    assert refused.value.type == "CodeNotIssued"


def test_a_receipt_before_its_send_is_applied_when_the_result_arrives() -> None:
    m = machine()
    m.receipt(receipt(DeliveryStatus.FAILED), at(1))  # no delivery carries msg-1 yet
    tried = first_try(m)
    before, held = tried.attempt.status, len(m.receipts)
    m.sent(tried.attempt, result("msg-1"), at(2))
    assert (before, held, len(m.receipts)) == (DeliveryStatus.SENDING, 1, 0)
    assert tried.attempt.status is DeliveryStatus.FAILED and tried.attempt.updated_at == at(2)
    assert m.wake
    assert m.plan.next_move(at(3)) == Advance(1, FAILED_REASON)
    assert [k.split(":")[0] for k, _ in logged(m)] == ["created", "sent", "failed"]


def test_a_delivered_receipt_for_a_sent_step_changes_no_step() -> None:
    m = machine()
    tried = first_try(m)
    m.sent(tried.attempt, result(), at(2))
    m.delivered(0, DeliveryKind.STEP, tried.attempt)
    m.receipt(receipt(DeliveryStatus.DELIVERED), at(3))
    assert tried.attempt.status is DeliveryStatus.DELIVERED
    move = m.plan.next_move(at(4))
    assert not isinstance(move, Advance | Deliver | Finish)


def test_a_failed_receipt_for_another_step_does_not_move_the_plan() -> None:
    m = machine()
    tried = first_try(m)
    m.sent(tried.attempt, result("msg-sms"), at(2))
    m.advance(1, "requested", at(3))
    email = first_try(m, index=1)
    m.sent(email.attempt, result("msg-email"), at(4))
    m.receipt(receipt(DeliveryStatus.FAILED, "msg-sms"), at(5))
    assert tried.attempt.status is DeliveryStatus.FAILED
    assert not isinstance(m.plan.next_move(at(6)), Advance)


def test_a_step_failing_on_every_provider_falls_back_but_a_resend_does_not() -> None:
    m = machine()
    tried = first_try(m)
    m.failed(tried.attempt, activity_error(ErrorType.PERMANENT_DELIVERY), at(2))
    assert logged(m)[-1][1] is EventType.FAILED and m.refusal is None
    m.delivered(0, DeliveryKind.RESEND, tried.attempt)
    assert not isinstance(m.plan.next_move(at(3)), Advance)
    m.delivered(0, DeliveryKind.STEP, tried.attempt)
    assert m.wake and m.plan.next_move(at(3)) == Advance(1, FAILED_REASON)


def test_a_refused_send_blocks_with_the_risk_controls_reason_and_code() -> None:
    m = machine()
    tried = first_try(m)
    detail = {"reason": "too many codes to +1415", "code": "velocity"}
    m.failed(tried.attempt, activity_error(ErrorType.BLOCKED, detail), at(2))
    m.block(at(2))
    assert (m.state.status, m.state.reason) == (Status.BLOCKED, "too many codes to +1415")
    assert m.reason_code() == "blocked:velocity"
    plain = machine()
    plain.block(T0)
    assert plain.state.reason == outcomes.BLOCKED and plain.reason_code() == "blocked"


def test_a_refused_resend_puts_the_sends_and_the_step_timer_back() -> None:
    m = machine(resend_cooldown_s=30, resend_backoff=2.0)
    sent = first_try(m)
    m.sent(sent.attempt, result(), at(1))
    before, failover = m.start_delivery(0, DeliveryKind.RESEND, at(40), RUN)
    resent = failover.next(at(40))
    assert resent is not None and m.state.sends == 2 and m.plan.deadline == at(100)
    m.failed(
        resent.attempt, activity_error(ErrorType.BLOCKED, {"code": "prefix", "limit": "p"}), at(41)
    )
    error = m.refuse_resend(before, resent.attempt, at(41))
    assert error.type == ErrorType.RESEND_REFUSED
    assert error.details == ({"code": "prefix", "limit": "p", "retry_after_s": None},)
    assert (m.state.sends, m.resends.resends, m.state.next_resend_at) == (1, 0, at(31))
    assert m.plan.deadline == at(61) and m.refusal is None and not m.terminal
    assert resent.attempt in m.state.deliveries and resent.attempt.updated_at == at(41)


def test_checks_count_attempts_until_the_right_code_or_the_last_attempt() -> None:
    m = machine(max_attempts=3)
    wrong = m.check(matched=False, now=at(1))
    assert (wrong.status, wrong.valid, wrong.attempts_remaining, wrong.attempts_used) == (
        Status.PENDING,
        False,
        2,
        1,
    )
    right = m.check(matched=True, now=at(2))
    assert (right.status, right.valid, right.attempts_used) == (Status.APPROVED, True, 2)
    assert logged(m)[1:] == [("check:1", EventType.CHECK_FAILED), ("terminal", EventType.APPROVED)]
    last = machine(max_attempts=1).check(matched=False, now=at(1))
    assert last.status is Status.MAX_ATTEMPTS_REACHED and last.attempts_remaining == 0


def test_a_resend_waits_while_a_send_is_in_flight_or_the_steps_own_is_due() -> None:
    m = machine(resend_cooldown_s=30)
    with pytest.raises(ApplicationError) as unsent:
        m.require_resend(SCOPE, at(100), sending=False)  # the step's own send has not started
    assert unsent.value.type == ErrorType.RESEND_COOLDOWN
    first_try(m)
    with pytest.raises(ApplicationError) as busy:
        m.require_resend(SCOPE, at(100), sending=True)
    assert busy.value.type == ErrorType.RESEND_COOLDOWN
    m.require_resend(SCOPE, at(100), sending=False)
    with pytest.raises(ApplicationError) as other:
        m.require_resend(
            ScopedInput(application_id="app_x", mode=Mode.TEST), at(100), sending=False
        )
    assert other.value.type == ErrorType.NOT_FOUND


def test_next_channel_needs_a_next_step_and_an_open_verification() -> None:
    m = machine()
    m.require_next(SCOPE)
    m.advance(1, "requested", at(1))
    with pytest.raises(ApplicationError) as last:
        m.require_next(SCOPE)
    assert last.value.type == ErrorType.NO_MORE_CHANNELS
    ended = machine()
    ended.finish(Status.CANCELED, outcomes.CANCELED, T0)
    with pytest.raises(ApplicationError) as finished:
        ended.require_next(SCOPE)
    assert finished.value.type == ErrorType.FINISHED
