"""Provider faults, live mode, end to end over real sockets: the service survives them.

API (uvicorn) -> Temporal dev server -> worker (production activities and the Twilio
adapter) -> `FaultyTwilio` (tests/helpers/faulty_twilio.py), email fallback through an
aiosmtpd server, receipts signed back through the API's webhook. The stack is the one
of tests/end_to_end/conftest.py (`start_stack`). Each test scripts the provider, then checks what reached
the provider and the phone (counts and arrival times), what the service recorded (the
workflow's state, `GET /v1/verifications/{id}`, its event log, its Temporal history),
and that the code delivered works.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.verification import VerificationActivities
from api.auth import Principal
from api.services.verification_workflows import Timeouts, VerificationService
from otp.domain import (
    ACTIVITY_DELIVER,
    Channel,
    ChannelStep,
    CodeType,
    DeliverInput,
    DeliverResult,
    DeliveryStatus,
    ErrorType,
    Mode,
    Status,
    VerificationInput,
)
from otp.store import Store
from providers.http import HttpTimeouts
from providers.sandbox import SandboxProvider
from providers.twilio import TwilioConfig, TwilioProvider
from tests.conftest import TEST_SECRETS
from tests.end_to_end.conftest import (
    TWILIO_ACCOUNT_SID,
    TWILIO_AUTH_TOKEN,
    TWILIO_SMS_FROM,
    Stack,
    StartStack,
)
from tests.helpers.faulty_twilio import (
    VALIDITY_EXPIRED,
    Accept,
    AcceptThenDrop,
    FaultyTwilio,
    Hang,
    Receipt,
    Refuse,
)

PHONE = "+14155550142"
EMAIL = "faults@example.com"
CODE_RE = re.compile(r"\b(\d{6})\b")
# A send unanswered for this long has an unknown outcome (OTP_PROVIDER_TIMEOUT_S).
PROVIDER_TIMEOUT_S = 1.0
# Slack for timings on a shared 2-core machine (lower bounds stay exact).
SLACK_S = 3.0
# How late the fake may stamp an arrival: its handler runs in the loop of the whole stack.
LAG_S = 0.5

Events = list[dict[str, Any]]


@pytest.fixture
async def faulty() -> AsyncIterator[FaultyTwilio]:
    async with FaultyTwilio(TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN) as fake:
        yield fake


@pytest.fixture
async def stack(start_stack: StartStack, faulty: FaultyTwilio) -> Stack:
    """The live stack with the fault-injecting Twilio as the only sms provider."""
    return await start_stack(
        twilio_base_url=faulty.url, sms_providers="twilio", provider_timeout_s=PROVIDER_TIMEOUT_S
    )


# ----------------------------------------------------------------- helpers
def code_in(text: str) -> str:
    match = CODE_RE.search(text)
    assert match, text
    return match.group(1)


def sms_then_email(sms_timeout_s: int) -> dict[str, Any]:
    return {
        "to": PHONE,
        "channels": [
            {"channel": "sms", "timeout_s": sms_timeout_s},
            {"channel": "email", "to": EMAIL, "timeout_s": 60},
        ],
    }


async def view(stack: Stack, vid: str) -> dict[str, Any]:
    response = await stack.api.get(f"/v1/verifications/{vid}")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def events(stack: Stack, vid: str, until: Callable[[Events], bool]) -> Events:
    """The event log once `until` holds (the activity logs sends in the background and
    the workflow writes its batch when it ends)."""
    deadline = time.monotonic() + 10
    while True:
        response = await stack.api.get(f"/v1/verifications/{vid}/events")
        found: Events = response.json()["data"] if response.status_code == 200 else []
        if until(found):
            return found
        assert time.monotonic() < deadline, [(e["type"], e["reason"]) for e in found]
        await asyncio.sleep(0.1)


def has(type_: str, **fields: Any) -> Callable[[Events], bool]:
    return lambda log: any(
        e["type"] == type_ and all(e[k] == v for k, v in fields.items()) for e in log
    )


async def check(stack: Stack, vid: str, code: str) -> str:
    response = await stack.api.post(f"/v1/verifications/{vid}/check", json={"code": code})
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


async def email_code(stack: Stack, vid: str, within: float) -> tuple[float, str]:
    """When the fallback email arrived (monotonic) and the code in it, once the workflow
    has its delivery as sent (a check that overtakes the send's result is another case:
    see test_a_check_that_overtakes_a_slow_answer_does_not_fail_the_delivery)."""
    mail = await stack.smtp.sink.wait_for_message(within=within)
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    await stack.wait_state(
        vid,
        lambda s: (
            s.deliveries[-1].channel is Channel.EMAIL
            and s.deliveries[-1].status is DeliveryStatus.SENT
        ),
    )
    return stack.smtp.sink.received[0][0], code_in(body.get_content())


async def deliver_tries(stack: Stack, vid: str) -> list[int]:
    """Each finished `deliver` activity's attempt count, from the workflow's history."""
    history = await stack.handle(vid).fetch_history()
    types: dict[int, str] = {}
    tries: list[int] = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            types[event.event_id] = (
                event.activity_task_scheduled_event_attributes.activity_type.name
            )
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            if types.get(started.scheduled_event_id) == ACTIVITY_DELIVER:
                tries.append(started.attempt)
    return tries


def refused_port() -> int:
    """A local port nothing listens on: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -------------------------------------------------------- transient refusals
async def test_5xx_twice_then_accepted_delivers_one_message_within_the_step(
    stack: Stack, faulty: FaultyTwilio
) -> None:
    faulty.script(
        PHONE, Refuse(500), Refuse(503), Accept(receipts=(Receipt("delivered", after_s=0.2),))
    )
    vid = await stack.create(sms_then_email(sms_timeout_s=30))

    state, _ = await stack.wait_state(
        vid,
        lambda s: bool(s.deliveries) and s.deliveries[0].status is DeliveryStatus.DELIVERED,
        within=15,
    )
    first, second, third = faulty.sends(PHONE)
    assert [s.behaviour for s in (first, second, third)] == [
        "refused_500",
        "refused_503",
        "accepted",
    ]
    # The retry policy's backoff (1 s, then 2 s) between tries of the same delivery key.
    assert first.answered_at is not None and second.answered_at is not None
    assert second.at - first.answered_at >= 0.95
    assert third.at - second.answered_at >= 1.95
    assert first.reference == second.reference == third.reference != ""
    # One message on the phone, recorded with its SID; one delivery, still on the sms step.
    [message] = faulty.on_handset(PHONE)
    assert [(d.provider, d.provider_message_id) for d in state.deliveries] == [
        ("twilio", message.sid)
    ]
    assert state.current_step == 0 and state.sends == 1
    assert await deliver_tries(stack, vid) == [3]  # Temporal counted the retries

    assert await check(stack, vid, code_in(message.body)) == "approved"
    log = await events(stack, vid, has("delivered"))
    assert [e["reason"] for e in log if e["type"] == "send_error"] == [
        "provider_unavailable (try 1)",
        "provider_unavailable (try 2)",
    ]
    [sent] = [e for e in log if e["type"] == "sent"]
    assert sent["provider_message_id"] == message.sid
    assert len(faulty.sends()) == 3 and not stack.smtp.sink.received


async def test_retry_after_on_429_and_503_holds_back_the_next_try(
    stack: Stack, faulty: FaultyTwilio
) -> None:
    """`Retry-After` in seconds (429) and as an HTTP date (503): no try comes earlier."""
    faulty.script(PHONE, Refuse(429, retry_after=3))
    vid = await stack.create(sms_then_email(sms_timeout_s=30))
    await faulty.wait_for_sends(1, within=5)
    retry_at = datetime.now(UTC) + timedelta(seconds=3)
    faulty.script(PHONE, Refuse(503, retry_after=format_datetime(retry_at, usegmt=True)), Accept())

    state, _ = await stack.wait_state(
        vid, lambda s: s.deliveries[0].status is DeliveryStatus.SENT, within=20
    )
    first, second, third = faulty.sends(PHONE)
    assert [s.behaviour for s in (first, second, third)] == [
        "refused_429",
        "refused_503",
        "accepted",
    ]
    assert first.answered_at is not None
    assert second.at - first.answered_at >= 3 - 0.05  # not the policy's 1 s
    # The date has whole seconds: the try comes at it, not before.
    assert third.at_utc >= retry_at.replace(microsecond=0) - timedelta(seconds=0.05)
    [message] = faulty.on_handset(PHONE)
    assert state.deliveries[0].provider_message_id == message.sid
    assert await check(stack, vid, code_in(message.body)) == "approved"
    log = await events(stack, vid, has("approved"))
    assert [e["reason"] for e in log if e["type"] == "send_error"] == [
        "rate_limited (try 1)",
        "provider_unavailable (try 2)",
    ]


async def test_a_retry_after_longer_than_the_step_falls_back_at_once(
    stack: Stack, faulty: FaultyTwilio
) -> None:
    """A 429 asking for a minute on a 6 s step: no second request, email right away."""
    faulty.script(PHONE, Refuse(429, retry_after=60))
    t0 = time.monotonic()
    vid = await stack.create(sms_then_email(sms_timeout_s=6))

    arrived, code = await email_code(stack, vid, within=10)
    assert arrived - t0 < 6  # before the step's own timer
    assert [s.behaviour for s in faulty.sends()] == ["refused_429"]
    public = await view(stack, vid)
    assert [(d["channel"], d["status"], d["error_type"]) for d in public["deliveries"]] == [
        ("sms", "failed", ErrorType.TRANSIENT_DELIVERY),
        ("email", "sent", None),
    ]
    assert await check(stack, vid, code) == "approved"
    await asyncio.sleep(1)
    assert len(faulty.sends()) == 1


# ---------------------------------------------------------- hangs and drops
async def test_a_hung_send_is_not_repeated_and_the_step_timer_falls_back_to_email(
    stack: Stack, faulty: FaultyTwilio
) -> None:
    """No answer and nothing in Twilio's list: sent but unconfirmed. Sending again could
    put two codes on the phone, so the step's timer decides."""
    faulty.script(PHONE, Hang(30))
    t0 = time.monotonic()
    vid = await stack.create(sms_then_email(sms_timeout_s=5))

    arrived, code = await email_code(stack, vid, within=5 + SLACK_S + 2)
    assert 5 <= arrived - t0 < 5 + SLACK_S
    [send] = faulty.sends()
    [lookup] = faulty.lookups()  # the adapter asked instead of sending again
    assert send.behaviour == "hung" and lookup.behaviour == "listed"
    assert lookup.at > send.at
    assert not faulty.accepted()

    assert await check(stack, vid, code) == "approved"
    public = await view(stack, vid)
    assert [(d["channel"], d["status"]) for d in public["deliveries"]] == [
        ("sms", "sent"),
        ("email", "sent"),
    ]
    log = await events(stack, vid, has("approved"))
    [sms_sent] = [e for e in log if e["type"] == "sent" and e["channel"] == "sms"]
    assert (sms_sent["reason"], sms_sent["provider_message_id"]) == ("unconfirmed", None)
    [fallback] = [e for e in log if e["type"] == "fallback"]
    assert fallback["reason"] == "no correct code before the step's timeout"
    assert len(faulty.sends()) == 1


@pytest.mark.parametrize(
    "hold_s",
    [pytest.param(0.0, id="closed-at-once"), pytest.param(2.0, id="past-the-read-timeout")],
)
async def test_an_answer_lost_after_accepting_is_reconciled_not_sent_again(
    stack: Stack, faulty: FaultyTwilio, hold_s: float
) -> None:
    faulty.script(
        PHONE, AcceptThenDrop(hold_s=hold_s, receipts=(Receipt("delivered", after_s=2.5),))
    )
    vid = await stack.create(sms_then_email(sms_timeout_s=30))

    state, _ = await stack.wait_state(
        vid,
        lambda s: bool(s.deliveries) and s.deliveries[0].status is DeliveryStatus.DELIVERED,
        within=10,
    )
    [send] = faulty.sends()
    [lookup] = faulty.lookups()
    [message] = faulty.on_handset(PHONE)
    assert send.behaviour == "accepted_then_dropped" and lookup.behaviour == "listed"
    assert state.deliveries[0].provider_message_id == message.sid  # found in the list
    assert await deliver_tries(stack, vid) == [1]

    assert await check(stack, vid, code_in(message.body)) == "approved"
    log = await events(stack, vid, has("delivered"))
    [sent] = [e for e in log if e["type"] == "sent"]
    assert (sent["reason"], sent["provider_message_id"]) == ("reconciled", message.sid)
    assert not [e for e in log if e["type"] == "send_error"]
    assert len(faulty.sends()) == 1 and not stack.smtp.sink.received


async def test_a_check_that_overtakes_a_slow_answer_does_not_fail_the_delivery(
    stack: Stack, faulty: FaultyTwilio
) -> None:
    """Twilio queues the message at once but does not answer within the provider timeout;
    the code is checked before the send is reconciled from Twilio's message list. The
    verification is approved (and recorded so) at once; the delivery that carried the
    code is recorded as sent, with its SID, once its outcome is known."""
    faulty.script(PHONE, Accept(answer_after_s=2))
    vid = await stack.create(sms_then_email(sms_timeout_s=30))
    message = await faulty.wait_for_handset(PHONE, within=5)

    assert await check(stack, vid, code_in(message.body)) == "approved"
    [send] = faulty.sends()
    assert send.answered_at is None  # the answer is still on its way
    # Recorded as approved before the answer came: its webhooks need not wait for it.
    assert (await view(stack, vid))["status"] == "approved"

    final = await stack.handle(vid).result()
    assert [(d.status, d.provider_message_id) for d in final.deliveries] == [
        (DeliveryStatus.SENT, message.sid)
    ]
    log = await events(stack, vid, has("sent", provider_message_id=message.sid))
    [sent] = [e for e in log if e["type"] == "sent"]
    assert sent["reason"] == "reconciled"
    public = await view(stack, vid)
    assert public["status"] == "approved"
    assert [(d["channel"], d["status"]) for d in public["deliveries"]] == [("sms", "sent")]
    assert not has("failed")(log)
    assert [e["type"] for e in log].count("approved") == 1
    assert len(faulty.sends()) == 1


async def test_a_retry_due_after_the_verification_ended_sends_nothing(
    stack: Stack, faulty: FaultyTwilio
) -> None:
    """A 503 asks for 3 s; the application cancels the verification meanwhile. The retry
    that comes due asks the workflow first and sends no code that can no longer be used."""
    faulty.script(PHONE, Refuse(503, retry_after=3))
    vid = await stack.create(sms_then_email(sms_timeout_s=30))
    await faulty.wait_for_sends(1, within=5)
    canceled = await stack.api.post(f"/v1/verifications/{vid}/cancel")
    assert canceled.status_code == 200, canceled.text

    final = await stack.handle(vid).result()
    assert final.status is Status.CANCELED
    assert [(d.status, d.error_type) for d in final.deliveries] == [
        (DeliveryStatus.FAILED, ErrorType.FINISHED)
    ]
    assert await deliver_tries(stack, vid) == [2]  # the retry ran, and stopped itself
    await asyncio.sleep(1)
    assert [s.behaviour for s in faulty.sends()] == ["refused_503"]
    assert not faulty.on_handset(PHONE) and not stack.smtp.sink.received


async def test_a_lost_answer_the_lookup_cannot_confirm_waits_for_its_receipt(
    stack: Stack, faulty: FaultyTwilio
) -> None:
    """The list answers 503 too: sent but unconfirmed, no second message; the receipt,
    matched by the delivery key in its callback URL, brings the SID and the delivery."""
    faulty.script(PHONE, AcceptThenDrop(receipts=(Receipt("delivered", after_s=2),)))
    faulty.script_lookup(Refuse(503))
    vid = await stack.create(sms_then_email(sms_timeout_s=30))

    state, _ = await stack.wait_state(
        vid, lambda s: bool(s.deliveries) and s.deliveries[0].status is DeliveryStatus.SENT
    )
    assert state.deliveries[0].provider_message_id == ""  # unconfirmed
    [message] = faulty.on_handset(PHONE)
    callback = await faulty.wait_for_receipt(message, "delivered", within=5)
    assert callback.status_code == 204, callback.body
    state, _ = await stack.wait_state(
        vid, lambda s: s.deliveries[0].status is DeliveryStatus.DELIVERED
    )
    assert state.deliveries[0].provider_message_id == message.sid
    assert state.deliveries[0].reference == message.reference

    assert await check(stack, vid, code_in(message.body)) == "approved"
    log = await events(stack, vid, has("delivered"))
    [sent] = [e for e in log if e["type"] == "sent"]
    assert (sent["reason"], sent["provider_message_id"]) == ("unconfirmed", None)
    assert [e["provider_message_id"] for e in log if e["type"] == "delivered"] == [message.sid]
    assert [x.behaviour for x in faulty.lookups()] == ["refused_503"]
    assert len(faulty.sends()) == 1 and not stack.smtp.sink.received


# --------------------------------------- one delivery attempt against its timeouts
# The production activity and Twilio adapter against the fault provider, with the
# attempt's Temporal timeouts set in an ActivityEnvironment: an end-to-end run would
# need a step longer than the activity's 30 s start-to-close timeout.
ATTEMPT_VID = "ver_faultsattempt0000000000000"


@pytest.fixture
async def one_attempt(
    faulty: FaultyTwilio, store: Store
) -> AsyncIterator[Callable[[timedelta, timedelta], Awaitable[DeliverResult]]]:
    """`await one_attempt(start_to_close, code_left)`: one `deliver` attempt over Twilio
    (read timeout 2 s), started now."""
    provider = TwilioProvider(
        TwilioConfig(
            account_sid=TWILIO_ACCOUNT_SID,
            auth_token=TWILIO_AUTH_TOKEN,
            sms_from=TWILIO_SMS_FROM,
            status_callback_url="http://127.0.0.1:9/v1/webhooks/twilio/status",
            base_url=faulty.url,
            timeouts=HttpTimeouts(read_s=2.0),
        )
    )
    activities = VerificationActivities(
        code_secret=TEST_SECRETS.code_secret,
        sandbox=SandboxProvider(store),
        live_providers={Channel.SMS: provider},
        providers_by_name={provider.name: provider},
    )

    async def attempt(start_to_close: timedelta, code_left: timedelta) -> DeliverResult:
        now = datetime.now(UTC)
        env = ActivityEnvironment()
        env.info = dataclasses.replace(
            env.info,
            workflow_id=ATTEMPT_VID,
            attempt=1,
            scheduled_time=now,
            started_time=now,
            start_to_close_timeout=start_to_close,
            schedule_to_close_timeout=timedelta(minutes=1),
        )
        deliver = DeliverInput(
            verification_id=ATTEMPT_VID,
            application_id="default",
            mode=Mode.LIVE,
            step_index=0,
            channel=Channel.SMS,
            to=PHONE,
            provider="twilio",
            nonce="0f1e2d3c4b5a69788796a5b4c3d2e1f0",
            code_length=6,
            code_type=CodeType.NUMERIC,
            expires_at=now + code_left,
            delivery_key=f"{ATTEMPT_VID}:run:1",
        )
        return await env.run(activities.deliver, deliver)

    try:
        yield attempt
    finally:
        await provider.aclose()


async def test_a_send_that_outlives_its_attempt_is_settled_before_temporal_retries_it(
    faulty: FaultyTwilio,
    one_attempt: Callable[[timedelta, timedelta], Awaitable[DeliverResult]],
) -> None:
    """The send (answer held) and the lookup (no answer) together outlast the attempt's
    start-to-close timeout. Temporal would time the attempt out and retry it, and the
    retry would put a second message on the phone; the attempt answers `sent,
    unconfirmed` before its timeout instead."""
    faulty.script(PHONE, AcceptThenDrop(hold_s=30))
    faulty.script_lookup(Hang(30))
    start_to_close = timedelta(seconds=3)

    t0 = time.monotonic()
    result = await one_attempt(start_to_close, timedelta(minutes=5))
    took = time.monotonic() - t0

    assert took < start_to_close.total_seconds(), took
    assert (result.provider, result.provider_message_id, result.status) == (
        "twilio",
        "",
        DeliveryStatus.SENT,
    )
    assert [s.behaviour for s in faulty.sends()] == ["accepted_then_dropped"]
    assert [x.behaviour for x in faulty.lookups()] == ["hung"]


async def test_a_code_with_under_a_second_left_is_not_sent(
    faulty: FaultyTwilio,
    one_attempt: Callable[[timedelta, timedelta], Awaitable[DeliverResult]],
) -> None:
    """Twilio's ValidityPeriod is at least 1 s: a code with less left could reach the
    phone after it expired, so it is not sent at all."""
    with pytest.raises(ApplicationError) as refused:
        await one_attempt(timedelta(seconds=3), timedelta(seconds=0.8))
    assert (refused.value.type, refused.value.non_retryable) == ("CodeExpired", True)
    assert not faulty.exchanges


# ---------------------------------------------------- persistent failure
async def test_a_provider_down_gets_its_max_attempts_then_the_plan_falls_back_to_email(
    start_stack: StartStack, faulty: FaultyTwilio
) -> None:
    """Twilio answers 500 to everything and the second sms provider refuses connections:
    Twilio gets exactly `provider_max_attempts` tries, the gateway retries while the step
    lasts, then email; the record and the event log show each outcome in order."""
    stack = await start_stack(
        twilio_base_url=faulty.url,
        sms_providers="twilio,http_gateway",
        http_gateway_url=f"http://127.0.0.1:{refused_port()}/v1/sms",
        provider_timeout_s=PROVIDER_TIMEOUT_S,
        provider_max_attempts=3,
    )
    faulty.script(PHONE, *[Refuse(500)] * 20)
    t0 = time.monotonic()
    vid = await stack.create(sms_then_email(sms_timeout_s=6))

    arrived, code = await email_code(stack, vid, within=6 + SLACK_S + 2)
    assert arrived - t0 < 6 + SLACK_S
    sends = faulty.sends()
    assert [s.behaviour for s in sends] == ["refused_500"] * 3
    assert all(s.at - t0 < 6 for s in sends)
    assert not faulty.accepted()
    assert await check(stack, vid, code) == "approved"

    public = await view(stack, vid)
    assert [
        (d["step_index"], d["channel"], d["provider"], d["status"], d["error_type"])
        for d in public["deliveries"]
    ] == [
        (0, "sms", "twilio", "failed", ErrorType.TRANSIENT_DELIVERY),
        (0, "sms", "http_gateway", "failed", ErrorType.TRANSIENT_DELIVERY),
        (1, "email", "smtp", "sent", None),
    ]
    assert public["status"] == "approved"
    log = await events(stack, vid, has("approved"))
    twilio_errors = [
        e["reason"] for e in log if e["type"] == "send_error" and e["provider"] == "twilio"
    ]
    assert twilio_errors == [f"provider_unavailable (try {n})" for n in (1, 2, 3)]
    assert has("send_error", provider="http_gateway", reason="connect_failed (try 1)")(log)
    order = [
        (e["type"], e["provider"])
        for e in log
        if e["type"] in ("failed", "fallback", "sent", "approved")
    ]
    assert order == [
        ("failed", "twilio"),
        ("failed", "http_gateway"),
        ("fallback", None),
        ("sent", "smtp"),
        ("approved", None),
    ], order
    failed_reasons = {e["reason"] for e in log if e["type"] == "failed"}
    assert failed_reasons == {ErrorType.TRANSIENT_DELIVERY}
    assert len(faulty.sends()) == 3


# ------------------------------------------------------------ late receipts
async def test_late_receipts_after_the_fallback_and_after_the_end_change_nothing(
    stack: Stack, faulty: FaultyTwilio
) -> None:
    """The sms's `delivered` comes after the plan fell back to email: recorded, the plan
    stays on email. An `undelivered` for it after the approval: logged, nothing else."""
    faulty.script(PHONE, Accept(receipts=(Receipt("delivered", after_s=6),)))
    vid = await stack.create(sms_then_email(sms_timeout_s=5))

    _, code = await email_code(stack, vid, within=5 + SLACK_S + 2)
    [message] = faulty.accepted(PHONE)
    callback = await faulty.wait_for_receipt(message, "delivered", within=6 + SLACK_S)
    assert callback.status_code == 204, callback.body
    state, _ = await stack.wait_state(
        vid, lambda s: s.deliveries[0].status is DeliveryStatus.DELIVERED
    )
    assert state.status is Status.PENDING and state.current_step == 1
    assert [(d.channel, d.status) for d in state.deliveries] == [
        (Channel.SMS, DeliveryStatus.DELIVERED),
        (Channel.EMAIL, DeliveryStatus.SENT),
    ]
    assert await check(stack, vid, code) == "approved"
    final = await view(stack, vid)

    late = await faulty.receipt_now(message, "undelivered", error_code="30003")
    assert late.status_code == 204, late.body
    log = await events(stack, vid, has("failed", reason="30003"))
    [failed] = [e for e in log if e["type"] == "failed"]
    assert (failed["channel"], failed["provider_message_id"]) == ("sms", message.sid)
    assert has("delivered", provider_message_id=message.sid)(log)
    assert await view(stack, vid) == final  # the record of the verification stands
    assert len(faulty.sends()) == 1 and len(stack.smtp.sink.received) == 1


# ------------------------------------------------------------------ expiry
async def test_no_send_reaches_the_provider_after_the_code_expired(
    stack: Stack, faulty: FaultyTwilio
) -> None:
    """Two verifications with a 6 s code (the API allows no less than 60 s, so they are
    started through the API's service layer): one provider refuses with Retry-After until
    past the expiry, the other accepts but its queue holds the message longer than the
    code lives. No request after `expires_at`, nothing on a phone after it, each
    verification ends with its record."""
    refusing, queued = "+14155550143", "+14155550144"
    faulty.script(refusing, *[Refuse(503, retry_after=1)] * 20)
    faulty.script(queued, Accept(queue_s=60))
    service = VerificationService(
        stack.client,
        task_queue=stack.settings.task_queue,
        timeouts=Timeouts(),
        code_secret=TEST_SECRETS.code_secret,
    )
    principal = Principal(application_id="default", mode=Mode.LIVE)
    started = []
    for to in (refusing, queued):
        input = VerificationInput(
            application_id="default",
            mode=Mode.LIVE,
            channels=[ChannelStep(channel=Channel.SMS, to=to, timeout_s=60, providers=["twilio"])],
            ttl_s=6,
            country="US",
            created_at=datetime.now(UTC),
            provider_max_attempts=3,
        )
        started.append(await service.start(input, principal, idempotency_key=None))
    results = await asyncio.gather(
        *(asyncio.wait_for(stack.handle(s.id).result(), 6 + 15) for s in started)
    )
    await asyncio.sleep(1)  # anything still in flight would arrive now

    for state in results:
        assert state.finished_at is not None
        assert state.finished_at <= state.expires_at + timedelta(seconds=1)
        for send in faulty.sends(state.channels[0].to):
            # Not after expiry, nor in its last second (the shortest ValidityPeriod).
            # Arrivals are stamped when the fake's handler runs: allow for event loop lag.
            left = (state.expires_at - send.at_utc).total_seconds()
            assert left > 1 - LAG_S, send.at_utc
            assert send.received is not None
            # Twilio drops what is still queued after ValidityPeriod: never past the code's life.
            validity = int(send.received.form["ValidityPeriod"])
            assert validity <= left + LAG_S
        assert not faulty.on_handset(state.channels[0].to)

    refused, dropped = results
    tries = faulty.sends(refusing)
    print(
        f"\nrefused until expiry: tries at {[round(t.at - tries[0].at, 1) for t in tries]} s, "
        f"{refused.status.value} {[(d.status.value, d.error_type) for d in refused.deliveries]}; "
        f"held in the queue: {dropped.status.value} {[d.error_type for d in dropped.deliveries]}"
    )
    assert len(tries) >= 3  # retried (Retry-After: 1) while the code lived
    assert refused.status in (Status.UNDELIVERABLE, Status.EXPIRED)
    if refused.status is Status.UNDELIVERABLE:
        # The last try was refused, by the provider or because the code had too little left.
        [attempt] = refused.deliveries
        assert attempt.status is DeliveryStatus.FAILED
        assert attempt.error_type in (ErrorType.TRANSIENT_DELIVERY, "CodeExpired")

    [message] = faulty.accepted(queued)
    assert message.expired_in_queue
    [receipt] = message.receipts
    assert (receipt.status, receipt.error_code, receipt.callback.status_code) == (
        "failed",
        VALIDITY_EXPIRED,
        204,
    )
    assert dropped.status in (Status.UNDELIVERABLE, Status.EXPIRED)

    for s, state in zip(started, results, strict=True):
        public = await view(stack, s.id)
        assert (public["status"], public["finished_at"] is not None) == (state.status.value, True)
    log = await events(stack, started[0].id, has(refused.status.value))
    assert not [e for e in log if e["type"] in ("sent", "delivered")]
    errors = [e["reason"] for e in log if e["type"] == "send_error"]
    assert errors == [f"provider_unavailable (try {n})" for n in range(1, len(tries) + 1)]
    log = await events(stack, started[1].id, has("failed", reason=VALIDITY_EXPIRED))
    assert has("sent", provider_message_id=message.sid)(log)
    assert not has("delivered")(log)
    assert len(faulty.sends(queued)) == 1
