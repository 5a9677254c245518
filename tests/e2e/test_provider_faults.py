"""Provider faults, live mode, over real sockets: a Twilio that refuses, rate-limits,
hangs, loses its answers and sends its receipts late (tests/e2e/faults.py).

API -> Temporal dev server -> worker (production activities, the Twilio adapter) ->
the faulty Twilio; email fallback through a real SMTP server. Each test checks what the
phone and the mailbox received, what the service recorded, and that the right code works.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.service import issue_code
from otp.domain import Channel, ChannelStep, Mode, Status, VerificationInput
from otp.store import Store
from otp.store import records as store_records
from tests.conftest import TEST_SECRETS
from tests.e2e.conftest import TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, Stack, StartStack
from tests.e2e.faults import Fault, FaultyTwilio
from workflows.verification import VerificationWorkflow

PHONE = "+14155550142"
EMAIL = "faults@example.com"
CODE_RE = re.compile(r"\b(\d{6})\b")
# A send whose answer takes longer than this has an unknown outcome.
PROVIDER_TIMEOUT_S = 1.0


@pytest.fixture
async def faulty() -> AsyncIterator[FaultyTwilio]:
    async with FaultyTwilio(TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN) as fake:
        yield fake


@pytest.fixture
async def stack(start_stack: StartStack, faulty: FaultyTwilio) -> Stack:
    return await start_stack(
        twilio_base_url=faulty.url,
        sms_providers="twilio",
        provider_timeout_s=PROVIDER_TIMEOUT_S,
    )


def code_in(text: str) -> str:
    match = CODE_RE.search(text)
    assert match, text
    return match.group(1)


def sms_then_email(sms_timeout_s: int, ttl_s: int = 600) -> dict[str, Any]:
    return {
        "to": PHONE,
        "ttl_s": ttl_s,
        "channels": [
            {"channel": "sms", "timeout_s": sms_timeout_s},
            {"channel": "email", "to": EMAIL, "timeout_s": 60},
        ],
    }


async def events(stack: Stack, vid: str) -> list[dict[str, Any]]:
    response = await stack.api.get(f"/v1/verifications/{vid}/events")
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


async def wait_events(
    stack: Stack, vid: str, predicate: Any, within: float = 10.0
) -> list[dict[str, Any]]:
    """The event log once `predicate(events)` holds (sends are logged in the background)."""
    deadline = time.monotonic() + within
    while True:
        found = await events(stack, vid)
        if predicate(found):
            return found
        assert time.monotonic() < deadline, [(e["type"], e.get("reason")) for e in found]
        await asyncio.sleep(0.1)


async def check(stack: Stack, vid: str, code: str) -> dict[str, Any]:
    response = await stack.api.post(f"/v1/verifications/{vid}/check", json={"code": code})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_5xx_and_429_are_retried_in_the_step_honouring_retry_after(
    stack: Stack, faulty: FaultyTwilio
) -> None:
    faulty.script = [Fault.status_code(503), Fault.status_code(429, retry_after=3)]
    vid = await stack.create(sms_then_email(sms_timeout_s=60))

    state, _ = await stack.wait_state(
        vid, lambda s: s.deliveries[0].status.value == "sent", within=20
    )
    first, second, third = faulty.posts()
    assert [r.answered for r in (first, second, third)] == [503, 429, 201]
    # The first retry follows the policy's initial interval; the second waits Retry-After.
    assert 0.8 <= second.at - first.at < 3
    assert third.at - second.at >= 3 - 0.1
    # One message reached the phone, with the delivery key for every try (one delivery).
    [delivered] = faulty.delivered_to(PHONE)
    refs = {r.form["StatusCallback"].split("ref=", 1)[1] for r in (first, second, third)}
    assert len(refs) == 1
    sms = state.deliveries[0]
    assert (sms.provider, sms.provider_message_id) == ("twilio", delivered.sid)

    log = await wait_events(stack, vid, lambda e: [x["type"] for x in e].count("send_error") == 2)
    errors = [e for e in log if e["type"] == "send_error"]
    assert [e["reason"] for e in errors] == [
        "provider_unavailable (try 1)",
        "rate_limited (try 2)",
    ]
    assert any(e["type"] == "sent" and e["provider_message_id"] == delivered.sid for e in log)

    assert (await check(stack, vid, code_in(delivered.body)))["status"] == "approved"
    assert not stack.smtp.sink.received
    assert len(faulty.posts()) == 3


async def test_an_accepted_send_whose_answer_is_lost_is_reconciled_not_repeated(
    stack: Stack, faulty: FaultyTwilio
) -> None:
    faulty.script = [Fault.accept_then_drop(PROVIDER_TIMEOUT_S + 3)]
    vid = await stack.create(sms_then_email(sms_timeout_s=60))

    state, _ = await stack.wait_state(
        vid, lambda s: bool(s.deliveries) and s.deliveries[0].status.value == "sent", within=15
    )
    [delivered] = faulty.delivered_to(PHONE)
    # The adapter asked Twilio instead of sending again, and found the message's SID.
    assert len(faulty.posts()) == 1
    assert state.deliveries[0].provider_message_id == delivered.sid
    log = await wait_events(stack, vid, lambda e: any(x["type"] == "sent" for x in e))
    [sent] = [e for e in log if e["type"] == "sent"]
    assert (sent["reason"], sent["provider_message_id"]) == ("reconciled", delivered.sid)

    assert (await check(stack, vid, code_in(delivered.body)))["status"] == "approved"

    # The carrier's receipt comes late, after the approval: logged, the outcome stays.
    receipt = await faulty.status_callback(delivered.received, "delivered")
    assert receipt.status_code == 204, receipt.body
    log = await wait_events(stack, vid, lambda e: any(x["type"] == "delivered" for x in e))
    view = (await stack.api.get(f"/v1/verifications/{vid}")).json()
    assert view["status"] == "approved"
    assert len(faulty.posts()) == 1 and not stack.smtp.sink.received


async def test_a_hung_provider_is_not_sent_to_twice_and_the_plan_falls_back(
    stack: Stack, faulty: FaultyTwilio
) -> None:
    """No answer and nothing in Twilio's list: sent but unconfirmed. Sending again could
    put two codes on the phone, so the step's timer decides, then email takes over."""
    faulty.script = [Fault.hang(PROVIDER_TIMEOUT_S + 4)]
    t0 = time.monotonic()
    vid = await stack.create(sms_then_email(sms_timeout_s=5))

    mail = await stack.smtp.sink.wait_for_message(within=20)
    fell_back_after = stack.smtp.sink.received[0][0] - t0
    assert 5 <= fell_back_after < 10, fell_back_after
    assert len(faulty.posts()) == 1 and not faulty.phone

    text = mail.get_body(preferencelist=("plain",))
    assert text is not None
    # A late failure receipt for the abandoned sms changes nothing that matters.
    [post] = faulty.posts()
    post.id = "SM" + "0" * 32
    late = await faulty.status_callback(post, "undelivered", error_code="30003")
    assert late.status_code == 204, late.body
    result = await check(stack, vid, code_in(text.get_content()))
    assert result["status"] == "approved"
    view = (await stack.api.get(f"/v1/verifications/{vid}")).json()
    assert [d["channel"] for d in view["deliveries"]] == ["sms", "email"]
    # The fallback is logged with the final record, when the verification ends.
    log = await wait_events(stack, vid, lambda e: any(x["type"] == "approved" for x in e))
    [sent] = [e for e in log if e["type"] == "sent" and e["channel"] == "sms"]
    assert sent["reason"] == "unconfirmed" and sent["provider_message_id"] is None
    types = [e["type"] for e in log]
    assert types.index("sent") < types.index("fallback") < types.index("approved")
    assert len(faulty.posts()) == 1


async def test_a_provider_down_for_the_whole_step_fails_it_and_email_takes_over(
    stack: Stack, faulty: FaultyTwilio
) -> None:
    faulty.script = [Fault.status_code(500)] * 50
    t0 = time.monotonic()
    vid = await stack.create(sms_then_email(sms_timeout_s=6))

    mail = await stack.smtp.sink.wait_for_message(within=20)
    posts = faulty.posts()
    # Retries with backoff (1 s, 2 s, 4 s...) while the step lasts, none after it.
    assert 2 <= len(posts) <= 4, [round(p.at - t0, 1) for p in posts]
    assert all(p.at - t0 < 6.5 for p in posts)
    assert not faulty.phone
    text = mail.get_body(preferencelist=("plain",))
    assert text is not None
    assert (await check(stack, vid, code_in(text.get_content())))["status"] == "approved"

    view = (await stack.api.get(f"/v1/verifications/{vid}")).json()
    sms, email = view["deliveries"]
    assert (sms["status"], email["status"]) == ("failed", "sent")
    assert sms["error_type"]
    log = await wait_events(stack, vid, lambda e: any(x["type"] == "approved" for x in e))
    types = [e["type"] for e in log]
    assert types.count("send_error") == len(posts)
    assert types.index("failed") < types.index("fallback") < types.index("approved")


async def test_no_send_reaches_the_provider_after_the_code_expired(
    stack: Stack, faulty: FaultyTwilio, store: Store
) -> None:
    """A provider that keeps failing until the code expires: the tries stop at expiry,
    nothing is ever delivered, and the verification ends with its record."""
    faulty.script = [Fault.status_code(503)] * 50
    vid = "ver_faultsexpiry000000000000"
    ttl_s = 8  # shorter than the API allows, to keep the test short: start it directly
    input = issue_code(
        TEST_SECRETS.code_secret,
        vid,
        VerificationInput(
            application_id="default",
            mode=Mode.LIVE,
            channels=[ChannelStep(channel=Channel.SMS, to=PHONE, timeout_s=60)],
            ttl_s=ttl_s,
            country="US",
        ),
    )
    handle = await stack.client.start_workflow(
        VerificationWorkflow.run, input, id=vid, task_queue=stack.settings.task_queue
    )
    state = await asyncio.wait_for(handle.result(), timeout=ttl_s + 15)

    assert state.status in (Status.UNDELIVERABLE, Status.EXPIRED)
    assert state.finished_at is not None
    assert state.finished_at <= state.expires_at + timedelta(seconds=1)
    posts = faulty.posts()
    assert posts and not faulty.phone
    arrivals = [datetime.fromtimestamp(time.time() - (time.monotonic() - p.at), UTC) for p in posts]
    assert max(arrivals) < state.expires_at, (arrivals, state.expires_at)
    record = await store_records.get_record(
        store, verification_id=vid, application_id="default", mode="live"
    )
    assert record is not None and record.status == state.status.value
