"""Retry timing and limits against a tiny scripted HTTP server (no service behind it)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest
from otp_client import (
    AsyncOtpClient,
    OtpClient,
    OtpConnectionError,
    RateLimitedError,
    ServerError,
    ServiceUnavailableError,
    UnexpectedResponseError,
)

VID = "ver_" + "b" * 26
VERIFICATION = {
    "id": VID,
    "status": "pending",
    "mode": "test",
    "to": "+1415*****23",
    "channels": [{"channel": "sms", "to": "+1415*****23", "timeout_s": 60}],
    "current_step": 0,
    "deliveries": [],
    "attempts_used": 0,
    "attempts_remaining": 5,
    "max_attempts": 5,
    "sends": 1,
    "max_sends": 5,
    "created_at": "2026-01-02T03:04:05Z",
    "expires_at": "2026-01-02T03:14:05Z",
    "locale": "en",
    "a_field_from_the_future": {"ignored": True},
}
CREATED = {
    **{k: VERIFICATION[k] for k in ("id", "status", "mode", "to", "channels", "locale")},
    "code_length": 6,
    "code_type": "numeric",
    "max_attempts": 5,
    "attempts_remaining": 5,
    "created_at": "2026-01-02T03:04:05Z",
    "expires_at": "2026-01-02T03:14:05Z",
}


@dataclass(frozen=True)
class Reply:
    status: int
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)


def problem(status: int, slug: str = "unavailable", **headers: str) -> Reply:
    body = {"type": f"urn:otp:problem:{slug}", "title": slug, "status": status}
    return Reply(status, body, {"content-type": "application/problem+json", **headers})


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    at: float


@dataclass
class Script:
    replies: Sequence[Reply]
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One request per connection (`connection: close`), answered from the script."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            await reader.readexactly(int(headers.get("content-length", "0")))
            self.seen.append(Seen(method, path, headers, time.monotonic()))
            reply = self.replies[min(len(self.seen), len(self.replies)) - 1]
            body = b"" if reply.body is None else json.dumps(reply.body).encode()
            extra = {"content-type": "application/json", "connection": "close", **reply.headers}
            head_out = "".join(f"{k}: {v}\r\n" for k, v in extra.items())
            status_line = f"HTTP/1.1 {reply.status} X\r\ncontent-length: {len(body)}\r\n"
            writer.write((status_line + head_out + "\r\n").encode() + body)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def gaps(self) -> list[float]:
        return [b.at - a.at for a, b in zip(self.seen, self.seen[1:], strict=False)]


@asynccontextmanager
async def scripted(*replies: Reply) -> AsyncIterator[Script]:
    script = Script(replies)
    server = await asyncio.start_server(script.handle, "127.0.0.1", 0)
    script.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield script
    finally:
        server.close()
        await server.wait_closed()


async def test_get_waits_retry_after_on_503_and_429() -> None:
    async with (
        scripted(
            problem(503, **{"retry-after": "1"}),
            problem(429, "rate-limited", **{"retry-after": "1"}),
            Reply(200, VERIFICATION),
        ) as script,
        AsyncOtpClient("otp_test_k", base_url=script.url, backoff=0.01) as otp,
    ):
        got = await otp.get(VID)
    assert got.id == VID and got.status == "pending"
    assert len(script.seen) == 3
    assert all(0.95 <= gap < 1.8 for gap in script.gaps()), script.gaps()
    assert script.seen[0].headers["authorization"] == "Bearer otp_test_k"


async def test_create_retries_with_one_generated_key_and_backs_off_with_jitter() -> None:
    async with scripted(problem(502), problem(504), Reply(201, CREATED)) as script:

        def create() -> str:
            with OtpClient("otp_test_k", base_url=script.url, backoff=0.2) as otp:
                return otp.start_verification("+14155550123").id

        assert await asyncio.to_thread(create) == VID
    keys = {s.headers["idempotency-key"] for s in script.seen}
    assert len(script.seen) == 3 and len(keys) == 1
    # Full jitter: at most 0.2 s, then at most 0.4 s.
    first, second = script.gaps()
    assert first < 0.5 and second < 0.7, script.gaps()


async def test_attempts_are_bounded() -> None:
    async with (
        scripted(problem(503)) as script,
        AsyncOtpClient("otp_test_k", base_url=script.url, max_retries=2, backoff=0.01) as otp,
    ):
        with pytest.raises(ServiceUnavailableError) as failed:
            await otp.check(VID, "123456")
    assert len(script.seen) == 3
    assert failed.value.idempotency_key == script.seen[0].headers["idempotency-key"]


async def test_unsafe_calls_are_not_retried_after_an_answer() -> None:
    async with (
        scripted(
            problem(503),
            problem(503),
            Reply(200, {"id": VID, "status": "canceled"}),
            Reply(200, {"unexpected": True}),
        ) as script,
        AsyncOtpClient("otp_test_k", base_url=script.url, backoff=0.01) as otp,
    ):
        with pytest.raises(ServerError):
            await otp.resend(VID)
        with pytest.raises(ServerError):
            await otp.next_channel(VID)
        assert (await otp.cancel(VID)).status == "canceled"
        with pytest.raises(UnexpectedResponseError):
            await otp.cancel(VID)  # a 2xx whose body is not a CancelResult
    assert [s.path for s in script.seen] == [
        f"/v1/verifications/{VID}/resend",
        f"/v1/verifications/{VID}/next-channel",
        f"/v1/verifications/{VID}/cancel",
        f"/v1/verifications/{VID}/cancel",
    ]
    assert all("idempotency-key" not in s.headers for s in script.seen)


async def test_long_retry_after_and_replayed_answers_are_raised_at_once() -> None:
    async with (
        scripted(
            problem(429, "rate-limited", **{"retry-after": "120"}),
            problem(429, "rate-limited", **{"retry-after": "1", "idempotent-replayed": "true"}),
        ) as script,
        AsyncOtpClient("otp_test_k", base_url=script.url, backoff=0.01) as otp,
    ):
        with pytest.raises(RateLimitedError) as long_wait:
            await otp.get(VID)
        assert long_wait.value.retry_after == 120
        with pytest.raises(RateLimitedError) as replayed:
            await otp.start_verification("+14155550123")
        assert replayed.value.retry_after == 1
    assert len(script.seen) == 2


async def test_idempotency_key_in_flight_is_retried() -> None:
    async with (
        scripted(
            problem(409, "idempotency-key-in-flight", **{"retry-after": "1"}),
            Reply(200, {"id": VID, "status": "approved", "valid": True, "attempts_remaining": 4}),
        ) as script,
        AsyncOtpClient("otp_test_k", base_url=script.url) as otp,
    ):
        result = await otp.check(VID, "123456", idempotency_key="check-1")
    assert result.valid
    assert [s.headers["idempotency-key"] for s in script.seen] == ["check-1", "check-1"]
    assert 0.95 <= script.gaps()[0] < 1.8


async def test_refused_connections_are_retried_even_for_unsafe_calls() -> None:
    calls: list[str] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        raise httpx.ConnectError("connection refused", request=request)

    otp = OtpClient(
        "otp_test_k", transport=httpx.MockTransport(refuse), max_retries=2, backoff=0.001
    )
    with pytest.raises(OtpConnectionError):
        otp.resend(VID)
    assert len(calls) == 3
