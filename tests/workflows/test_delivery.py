"""A provider's try at a delivery: failover, activity input and options, failures (no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    RetryState,
    TimeoutError,
    TimeoutType,
)

from otp.domain import (
    Channel,
    ChannelStep,
    DeliverResult,
    DeliveryAttempt,
    DeliveryKind,
    DeliveryStatus,
    ErrorType,
    VerificationInput,
    VerificationState,
)
from tests.helpers.workflows import PHONE, make_input, plan
from workflows import delivery
from workflows.delivery import Failover, Refusal

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RUN = ("ver_abc", "run-1")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def activity_error(cause: BaseException | None) -> ActivityError:
    err = ActivityError(
        "activity failed",
        scheduled_event_id=5,
        started_event_id=6,
        identity="worker",
        activity_type="deliver",
        activity_id="1",
        retry_state=RetryState.NON_RETRYABLE_FAILURE,
    )
    err.__cause__ = cause
    return err


def blocked(*details: object) -> ActivityError:
    return activity_error(ApplicationError("refused", *details, type=ErrorType.BLOCKED))


def sending() -> DeliveryAttempt:
    return DeliveryAttempt(step_index=0, channel=Channel.SMS, started_at=T0, updated_at=T0)


def sms_input(providers: list[str], **overrides: object) -> VerificationInput:
    step = ChannelStep(channel=Channel.SMS, to=PHONE, timeout_s=60, providers=providers)
    return make_input([step, *plan((Channel.EMAIL, 60))], **overrides)


def failover(
    input: VerificationInput,
    state: VerificationState | None = None,
    *,
    index: int = 0,
    kind: DeliveryKind = DeliveryKind.STEP,
    step_end: datetime = at(60),
) -> tuple[Failover, VerificationState]:
    state = state or VerificationState.initial(input, T0)
    return Failover(input, state, index, kind, step_end=step_end, nonce="n0nce", run=RUN), state


def test_a_step_without_providers_is_tried_once_with_the_channel_default() -> None:
    walk, state = failover(make_input(plan((Channel.SMS, 60))))
    first = walk.next(T0)
    assert first is not None and first.attempt.provider is None
    assert state.deliveries == [first.attempt] and walk.last is first.attempt
    assert first.retry_policy == delivery.RETRY  # the last provider retries within its budget
    assert walk.next(at(1)) is None


def test_providers_are_tried_in_order_with_numbered_delivery_keys() -> None:
    walk, state = failover(sms_input(["twilio", "http_gateway"]))
    state.deliveries.append(sending())  # an earlier delivery of this run
    first, second = walk.next(T0), walk.next(at(10))
    assert first is not None and second is not None and walk.next(at(20)) is None
    assert [first.attempt.provider, second.attempt.provider] == ["twilio", "http_gateway"]
    assert first.attempt.reference == "ver_abc:run-1:2"
    assert second.attempt.reference == "ver_abc:run-1:3"
    assert first.input.delivery_key == first.attempt.reference
    assert first.retry_policy.maximum_attempts == 3  # hands over after its attempts
    assert second.retry_policy.maximum_attempts == 0  # the last: until the budget ends
    assert walk.last is second.attempt


def test_every_try_of_a_delivery_charges_the_limits_as_its_first_try() -> None:
    walk, _ = failover(sms_input(["twilio", "http_gateway", "sandbox"]))
    tries = [walk.next(at(n)) for n in range(3)]
    members = [t.input.limit_member for t in tries if t is not None]
    assert members == ["ver_abc:run-1:1"] * 3


def test_only_a_runs_first_delivery_of_an_api_issued_code_is_precounted() -> None:
    issued = sms_input(["twilio", "http_gateway"], code_digest="d" * 64, code_nonce="n")
    walk, state = failover(issued)
    tries = [walk.next(T0), walk.next(at(1))]
    assert [t.input.precounted for t in tries if t is not None] == [True, True]
    again, _ = failover(issued, state, kind=DeliveryKind.RESEND)
    resent = again.next(at(30))
    assert resent is not None and not resent.input.precounted
    own, _ = failover(sms_input(["twilio"]))  # the run issues its own code: nothing charged
    mine = own.next(T0)
    assert mine is not None and not mine.input.precounted


def test_no_further_provider_with_less_than_a_second_left() -> None:
    walk, _ = failover(sms_input(["twilio", "http_gateway"]), step_end=at(60))
    first = walk.next(at(59.5))
    assert first is not None and first.budget == timedelta(seconds=1)  # the first is always tried
    assert walk.next(at(59.5)) is None


def test_a_try_gets_the_rest_of_its_step_and_at_most_30_s_per_attempt() -> None:
    walk, _ = failover(sms_input(["twilio", "http_gateway"]), step_end=at(60))
    first = walk.next(at(10))
    assert first is not None
    assert first.budget == timedelta(seconds=50)
    assert first.start_to_close == timedelta(seconds=30)
    second = walk.next(at(50))
    assert second is not None and second.start_to_close == second.budget == timedelta(seconds=10)


def test_the_activity_input_carries_the_step_and_never_a_code() -> None:
    input = sms_input(["twilio"], locale="fr", brand="Acme", country="FR")
    walk, state = failover(input, kind=DeliveryKind.RESEND)
    tried = walk.next(at(5))
    assert tried is not None
    sent = tried.input
    assert (sent.verification_id, sent.step_index, sent.kind) == ("ver_abc", 0, DeliveryKind.RESEND)
    assert (sent.channel, sent.to, sent.provider) == (Channel.SMS, PHONE, "twilio")
    assert (sent.nonce, sent.locale, sent.brand, sent.country) == ("n0nce", "fr", "Acme", "FR")
    assert sent.expires_at == state.expires_at
    assert tried.summary == "deliver sms (step 1, resend) via twilio"
    assert tried.attempt.started_at == tried.attempt.updated_at == at(5)
    assert tried.attempt.status is DeliveryStatus.SENDING


def test_the_summary_names_the_provider_only_when_there_is_one() -> None:
    walk, _ = failover(make_input(plan((Channel.SMS, 60), (Channel.EMAIL, 60))), index=1)
    tried = walk.next(T0)
    assert tried is not None and tried.summary == "deliver email (step 2, step)"


def test_the_retry_policy_never_retries_what_cannot_succeed() -> None:
    policy = delivery.retry_policy(last=False, provider_max_attempts=2)
    assert isinstance(policy, RetryPolicy) and policy.maximum_attempts == 2
    assert set(policy.non_retryable_error_types or []) == {
        ErrorType.PERMANENT_DELIVERY,
        ErrorType.BLOCKED,
        ErrorType.COST_CAP,
        "CodeExpired",
    }
    assert delivery.retry_policy(last=True, provider_max_attempts=2).maximum_attempts == 0


def test_a_failure_is_typed_by_its_cause() -> None:
    typed = ApplicationError("down", type=ErrorType.TRANSIENT_DELIVERY)
    timeout = TimeoutError("late", type=TimeoutType.START_TO_CLOSE, last_heartbeat_details=[])
    assert delivery.failure_type(activity_error(typed)) == ErrorType.TRANSIENT_DELIVERY
    assert delivery.failure_type(activity_error(timeout)) == "DeliveryTimeout"
    assert delivery.failure_type(activity_error(CancelledError("canceled"))) == "DeliveryCanceled"
    assert delivery.failure_type(activity_error(ApplicationError("untyped"))) == "ApplicationError"
    assert delivery.failure_type(activity_error(None)) == "DeliveryFailed"


def test_a_refusal_keeps_only_well_formed_details() -> None:
    detail = {
        "reason": "r" * 400,
        "code": "velocity_destination",
        "limit": "destination_hour",
        "retry_after_s": 12.7,
    }
    assert delivery.refusal(blocked(detail)) == Refusal(
        reason="r" * 300, code="velocity_destination", limit="destination_hour", retry_after_s=12
    )
    odd = {"reason": 5, "code": "not an id", "limit": "x" * 60, "retry_after_s": True}
    assert delivery.refusal(blocked(odd)) == Refusal(limit="x" * 40)
    assert delivery.refusal(blocked({"retry_after_s": 0.2})).retry_after_s == 1
    assert delivery.refusal(blocked("not a dict")) == Refusal()
    assert delivery.refusal(blocked()) == Refusal()
    assert delivery.refusal(activity_error(None)) == Refusal()


def test_a_failed_try_is_marked_and_only_a_block_reports_a_refusal() -> None:
    refused = sending()
    assert delivery.failed(refused, blocked({"code": "blocked_prefix"})) == Refusal(
        code="blocked_prefix"
    )
    assert (refused.status, refused.error_type) == (DeliveryStatus.FAILED, ErrorType.BLOCKED)
    down = sending()
    permanent = ApplicationError("bad", type=ErrorType.PERMANENT_DELIVERY)
    assert delivery.failed(down, activity_error(permanent)) is None
    assert down.error_type == ErrorType.PERMANENT_DELIVERY


def test_a_result_sets_the_provider_but_never_undoes_an_earlier_receipt() -> None:
    result = DeliverResult(provider="twilio", provider_message_id="SM1", status=DeliveryStatus.SENT)
    fresh = sending()
    delivery.succeeded(fresh, result)
    assert (fresh.provider, fresh.provider_message_id, fresh.status) == (
        "twilio",
        "SM1",
        DeliveryStatus.SENT,
    )
    for earlier in (DeliveryStatus.FAILED, DeliveryStatus.DELIVERED):
        overtaken = sending()
        overtaken.status = earlier
        delivery.succeeded(overtaken, result)
        assert overtaken.status is earlier and overtaken.provider_message_id == "SM1"
