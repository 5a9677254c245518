"""The SDK against the real service: flows, problems, search, events and analytics."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from otp_client import (
    AsyncOtpClient,
    AuthenticationError,
    ChannelStep,
    InvalidRequestError,
    NotFoundError,
    OtpClient,
    PermissionDeniedError,
    RateLimitedError,
    Status,
    VerificationFinishedError,
)

from tests.helpers.api import Keys
from tests.sdk.conftest import aread_code, read_code, unique_email, wrong_code

PHONE = "+14155550123"


def _events_until(client: OtpClient, vid: str, last: str) -> list[str]:
    """Event types once `last` is logged (the workflow writes its batch when it ends)."""
    deadline = time.monotonic() + 15
    while True:
        types = [e.type for e in client.events(vid).data]
        if last in types or time.monotonic() > deadline:
            assert last in types, types
            return types
        time.sleep(0.05)


async def test_sync_flow_start_wrong_code_right_code_approved(service_url: str, keys: Keys) -> None:
    def flow() -> None:
        with OtpClient(keys.test, base_url=service_url) as otp:
            created = otp.start_verification(PHONE, brand="Acme", client_ref="sdk-sync")
            assert created.id.startswith("ver_")
            assert created.status == Status.PENDING
            assert created.to == "+1********23"
            assert [(c.channel, c.timeout_s) for c in created.channels] == [("sms", 60)]
            assert created.attempts_remaining == 5
            assert created.client_ref == "sdk-sync"

            code = read_code(otp, created.id)
            wrong = otp.check(created.id, wrong_code(code))
            assert (wrong.valid, wrong.status, wrong.attempts_remaining) == (False, "pending", 4)

            right = otp.check(created.id, code)
            assert (right.valid, right.status, right.attempts_remaining) == (True, "approved", 3)

            state = otp.get(created.id)
            assert state.status == Status.APPROVED and state.is_finished
            assert state.attempts_used == 2
            assert state.finished_at is not None
            assert [(d.channel, d.kind) for d in state.deliveries] == [("sms", "step")]

            with pytest.raises(VerificationFinishedError) as finished:
                otp.check(created.id, code)
            assert finished.value.status_code == 409
            assert finished.value.status_of_verification == "approved"
            assert finished.value.problem is not None
            assert finished.value.problem.instance == f"/v1/verifications/{created.id}/check"

            types = _events_until(otp, created.id, "approved")
            assert types[0] == "created" and "check_failed" in types

    await asyncio.to_thread(flow)


async def test_async_flow_resend_next_channel_cancel(service_url: str, keys: Keys) -> None:
    email = unique_email()
    async with AsyncOtpClient(keys.test, base_url=service_url) as otp:
        created = await otp.start_verification(
            PHONE,
            channels=[ChannelStep(channel="sms", timeout_s=300), {"channel": "email", "to": email}],
            code_length=8,
        )
        assert [c.channel for c in created.channels] == ["sms", "email"]
        assert created.code_length == 8
        code = await aread_code(otp, created.id)
        assert len(code) == 8

        # Inside the cooldown: a 429 with Retry-After, raised at once (resend is not retried).
        started = time.monotonic()
        with pytest.raises(RateLimitedError) as limited:
            await otp.resend(created.id)
        assert time.monotonic() - started < 5
        assert limited.value.retry_after is not None and limited.value.retry_after > 0
        assert len(await otp.sandbox_messages(verification_id=created.id)) == 1

        moved = await otp.next_channel(created.id)
        assert moved.step_index == 1
        assert moved.delivery.channel == "email"
        assert await aread_code(otp, created.id, count=2) == code  # the same code, by email

        wrong = await otp.check(created.id, wrong_code(code))
        assert not wrong.valid and wrong.attempts_remaining == 4

        canceled = await otp.cancel(created.id)
        assert canceled.status == Status.CANCELED
        with pytest.raises(VerificationFinishedError) as finished:
            await otp.check(created.id, code)
        assert finished.value.status_of_verification == "canceled"

        state = await otp.get(created.id)
        assert state.status == "canceled"
        assert state.current_step == 1
        assert [d.channel for d in state.deliveries] == ["sms", "email"]


async def test_async_flow_approves(service_url: str, keys: Keys) -> None:
    async with AsyncOtpClient(keys.test, base_url=service_url) as otp:
        created = await otp.start_verification(
            unique_email(), user_id="u_8f14e45f", user_ip="203.0.113.7", locale="fr"
        )
        assert created.locale == "fr"
        assert [c.channel for c in created.channels] == ["email"]
        code = await aread_code(otp, created.id)
        assert not (await otp.check(created.id, wrong_code(code))).valid
        approved = await otp.check(created.id, code.lower())  # case-insensitive
        assert approved.valid and approved.status == "approved"
        assert (await otp.get(created.id)).status == "approved"


async def test_problems_map_to_exceptions(service_url: str, keys: Keys) -> None:
    async with (
        AsyncOtpClient(keys.test, base_url=service_url) as otp,
        AsyncOtpClient(keys.live, base_url=service_url) as live,
        AsyncOtpClient("otp_test_" + "x" * 43, base_url=service_url) as stranger,
    ):
        unknown = "ver_" + "a" * 26
        with pytest.raises(NotFoundError) as missing:
            await otp.get(unknown)
        assert missing.value.status_code == 404
        assert missing.value.problem.type == "urn:otp:problem:verification-not-found"
        with pytest.raises(NotFoundError):
            await otp.check(unknown, "123456")

        with pytest.raises(InvalidRequestError) as invalid:
            await otp.start_verification(PHONE, code_length=3)
        assert invalid.value.status_code == 422
        assert invalid.value.problem.errors
        assert any(e.get("pointer") == "#/code_length" for e in invalid.value.problem.errors)
        assert invalid.value.idempotency_key  # the key it was sent with

        with pytest.raises(AuthenticationError) as unauthorized:
            await stranger.get(unknown)
        assert unauthorized.value.status_code == 401

        with pytest.raises(PermissionDeniedError):
            await live.sandbox_messages(to=PHONE)


async def test_search_iterates_every_page_and_analytics_counts(
    service_url: str, keys: Keys
) -> None:
    ref = f"sdk-page-{uuid.uuid4().hex[:8]}"
    since = datetime.now(UTC) - timedelta(minutes=1)
    async with AsyncOtpClient(keys.test, base_url=service_url) as otp:
        ids = [(await otp.start_verification(unique_email(), client_ref=ref)).id for _ in range(5)]

        first = await otp.search(client_ref=ref, limit=2)
        assert [v.id for v in first.data] == ids[::-1][:2]
        assert first.next_cursor

        seen = [v.id async for v in otp.iter_search(client_ref=ref, page_size=2)]
        assert seen == ids[::-1]
        assert all(v.client_ref == ref for v in (await otp.search(client_ref=ref)).data)
        assert [v.id async for v in otp.iter_search(client_ref="nobody-" + ref)] == []

        report = await otp.analytics(created_after=since, group_by=["day", "channel"])
        assert report.group_by == ["day", "channel"]
        assert report.totals.started >= 5
        assert any(g.channel == "email" and g.started >= 5 for g in report.groups)

    def sync_pages() -> list[str]:
        with OtpClient(keys.test, base_url=service_url) as otp:
            return [v.id for v in otp.iter_search(client_ref=ref, page_size=3)]

    assert await asyncio.to_thread(sync_pages) == ids[::-1]


async def test_a_sandbox_long_poll_outlasts_the_client_read_timeout(
    service_url: str, keys: Keys
) -> None:
    """`wait` longer than the client's timeout: the read timeout grows to match, so the
    empty answer comes when the wait ends, not as a timeout."""
    nobody = "+14155550177"
    async with AsyncOtpClient(keys.test, base_url=service_url, timeout=0.5) as otp:
        t0 = time.monotonic()
        assert await otp.sandbox_messages(to=nobody, wait=1.2) == []
        assert 1.2 <= time.monotonic() - t0 < 5

    def blocking() -> None:  # off the loop that serves the API
        with OtpClient(keys.test, base_url=service_url, timeout=0.5) as otp:
            t0 = time.monotonic()
            assert otp.sandbox_messages(to=nobody, wait=1.2) == []
            assert 1.2 <= time.monotonic() - t0 < 5

    await asyncio.to_thread(blocking)
