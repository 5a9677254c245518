"""StepPlan: the channel plan's progression, without a Temporal server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.exceptions import ApplicationError

from otp.domain import (
    Channel,
    DeliveryAttempt,
    DeliveryKind,
    DeliveryStatus,
    ErrorType,
    Status,
    VerificationState,
)
from tests.helpers.workflows import make_input, plan
from workflows import outcomes
from workflows.steps import (
    FAILED_REASON,
    TIMEOUT_REASON,
    Advance,
    Deliver,
    Finish,
    Phase,
    StepPlan,
    Wait,
    whole_ms,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def make_plan(*steps: tuple[Channel, int], ttl_s: int = 600) -> tuple[StepPlan, VerificationState]:
    input = make_input(plan(*steps), ttl_s=ttl_s)
    state = VerificationState.initial(input, T0)
    return StepPlan(input.channels, state), state


def attempt(
    index: int,
    kind: DeliveryKind = DeliveryKind.STEP,
    status: DeliveryStatus = DeliveryStatus.SENT,
) -> DeliveryAttempt:
    return DeliveryAttempt(
        step_index=index,
        kind=kind,
        channel=Channel.SMS,
        status=status,
        started_at=T0,
        updated_at=T0,
    )


def test_a_new_plan_sends_its_first_step() -> None:
    steps, _ = make_plan((Channel.SMS, 60), (Channel.EMAIL, 60))
    assert steps.next_move(T0) == Deliver(0)
    assert steps.phase is Phase.PENDING and steps.step_unsent


def test_a_sent_step_waits_for_its_timeout_then_falls_back() -> None:
    steps, _ = make_plan((Channel.SMS, 60), (Channel.EMAIL, 60))
    steps.sending(0, at(1))
    assert not steps.step_unsent
    assert steps.next_move(at(11)) == Wait(
        timedelta(seconds=50), "wait for check: step 1 (sms) or expiry"
    )
    assert steps.next_move(at(61)) == Advance(1, TIMEOUT_REASON)


def test_a_failed_step_falls_back_at_once() -> None:
    steps, _ = make_plan((Channel.SMS, 60), (Channel.EMAIL, 60))
    steps.sending(0, T0)
    steps.send_failed(0)
    assert steps.next_move(at(1)) == Advance(1, FAILED_REASON)


def test_advancing_makes_the_next_step_current_and_pending() -> None:
    steps, state = make_plan((Channel.SMS, 60), (Channel.EMAIL, 60))
    steps.sending(0, T0)
    step = steps.advance(1)
    assert step is not None and step.channel is Channel.EMAIL
    assert state.current_step == 1 and steps.index == 1
    assert steps.phase is Phase.PENDING and steps.step_unsent
    assert steps.next_move(at(5)) == Deliver(1)


def test_past_the_last_step_only_the_expiry_is_left() -> None:
    steps, state = make_plan((Channel.SMS, 60), ttl_s=600)
    steps.sending(0, T0)
    state.deliveries.append(attempt(0, status=DeliveryStatus.SENT))
    assert steps.advance(1) is None
    assert steps.reached == 0 and steps.reached_channel is Channel.SMS
    assert not steps.step_unsent
    assert steps.next_move(at(60)) == Wait(timedelta(seconds=540), "wait for check: expiry")


def test_past_the_last_step_with_every_delivery_failed_is_undeliverable() -> None:
    steps, state = make_plan((Channel.SMS, 60), (Channel.EMAIL, 60))
    state.deliveries += [attempt(0, status=DeliveryStatus.FAILED)] * 2
    steps.advance(2)
    assert steps.next_move(at(1)) == Finish(Status.UNDELIVERABLE, outcomes.UNDELIVERABLE)


def test_the_expiry_comes_before_anything_else() -> None:
    steps, _ = make_plan((Channel.SMS, 60), ttl_s=60)
    assert steps.next_move(at(60)) == Finish(Status.EXPIRED, outcomes.EXPIRED)
    steps.send_failed(0)
    assert steps.next_move(at(61)) == Finish(Status.EXPIRED, outcomes.EXPIRED)


def test_the_wait_ends_at_the_expiry_when_it_comes_before_the_step_timeout() -> None:
    steps, _ = make_plan((Channel.SMS, 300), ttl_s=120)
    steps.sending(0, T0)
    move = steps.next_move(at(100))
    assert isinstance(move, Wait) and move.timeout == timedelta(seconds=20)
    assert steps.step_end(0, T0) == at(120)  # a delivery never runs past the expiry
    assert steps.step_end(0, at(-200)) == at(100)


def test_waits_are_whole_milliseconds_rounded_up() -> None:
    assert whole_ms(timedelta(microseconds=1500)) == timedelta(milliseconds=2)
    assert whole_ms(timedelta(milliseconds=7)) == timedelta(milliseconds=7)
    assert whole_ms(timedelta(0)) == timedelta(0)
    steps, _ = make_plan((Channel.SMS, 60))
    steps.sending(0, T0)
    move = steps.next_move(T0 + timedelta(microseconds=250))
    assert isinstance(move, Wait) and move.timeout == timedelta(seconds=60)


def test_a_resend_on_the_current_step_restarts_its_timer() -> None:
    steps, _ = make_plan((Channel.SMS, 60), (Channel.EMAIL, 60))
    steps.sending(0, T0)
    steps.sending(0, at(50))
    assert steps.deadline == at(110)
    assert steps.next_move(at(100)) == Wait(
        timedelta(seconds=10), "wait for check: step 1 (sms) or expiry"
    )


def test_a_send_on_another_step_leaves_the_current_one_alone() -> None:
    steps, _ = make_plan((Channel.SMS, 60), (Channel.EMAIL, 60))
    steps.advance(2)  # past the plan: a resend goes to the last step reached
    steps.sending(steps.reached, T0)
    steps.send_failed(steps.reached)
    assert steps.phase is Phase.PENDING and steps.deadline == at(600)


def test_a_failed_receipt_falls_back_only_for_the_open_sent_current_step() -> None:
    steps, state = make_plan((Channel.SMS, 60), (Channel.EMAIL, 60))
    phases = []
    steps.receipt_failed(0)
    phases.append(steps.phase)  # its send has not started: nothing to fail
    steps.sending(0, T0)
    steps.receipt_failed(1)
    phases.append(steps.phase)  # a receipt for another step
    state.status = Status.APPROVED
    steps.receipt_failed(0)
    phases.append(steps.phase)  # after the end
    state.status = Status.PENDING
    steps.receipt_failed(0)
    phases.append(steps.phase)
    assert phases == [Phase.PENDING, Phase.ACTIVE, Phase.ACTIVE, Phase.FAILED]


def test_next_channel_is_refused_on_the_last_step() -> None:
    steps, _ = make_plan((Channel.SMS, 60), (Channel.EMAIL, 60))
    steps.require_next()
    steps.advance(1)
    with pytest.raises(ApplicationError) as refused:
        steps.require_next()
    assert refused.value.type == ErrorType.NO_MORE_CHANNELS and refused.value.non_retryable


def test_the_step_attempt_is_the_latest_own_send_and_settles_when_it_has_an_outcome() -> None:
    steps, state = make_plan((Channel.SMS, 60), (Channel.EMAIL, 60))
    assert steps.step_attempt(1) is None and steps.settled_attempt(1) is None
    first = attempt(1, status=DeliveryStatus.FAILED)
    second = attempt(1, status=DeliveryStatus.SENDING)
    state.deliveries += [attempt(0), first, second, attempt(1, kind=DeliveryKind.RESEND)]
    assert steps.step_attempt(1) is second
    assert steps.settled_attempt(1) is None  # still in flight
    second.status = DeliveryStatus.SENT
    assert steps.settled_attempt(1) is second


def test_a_snapshot_puts_the_phase_and_deadline_back() -> None:
    steps, _ = make_plan((Channel.SMS, 60))
    before = steps.snapshot()
    steps.sending(0, T0)
    steps.send_failed(0)
    steps.restore(before)
    assert steps.phase is Phase.PENDING and steps.deadline == at(600)
