"""Fixtures for the SDK tests: the real service over a socket, and flaky transports.

The service is the `service_url` fixture of tests/helpers/api.py: the app under uvicorn on a
free loopback port, with a real worker on the test's task queue.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass, field

import httpx
from otp_client import AsyncOtpClient, OtpClient

# The code is the one word of 4-10 upper-case letters or digits in every template.
CODE_RE = re.compile(r"\b([0-9A-Z]{4,10})\b")


def unique_email() -> str:
    return f"sdk-{uuid.uuid4().hex[:12]}@example.com"


def wrong_code(code: str) -> str:
    """A code of the same shape that is certainly not `code`."""
    return "".join("1" if c != "1" else "2" for c in code)


def _code_of(body: str) -> str:
    match = CODE_RE.search(body)
    assert match, body
    return match.group(1)


def read_code(client: OtpClient, verification_id: str, *, count: int = 1) -> str:
    """The code in the sandbox inbox once `count` messages arrived (blocking client)."""
    deadline = time.monotonic() + 15
    while True:
        messages = client.sandbox_messages(verification_id=verification_id, wait=10)
        if len(messages) >= count or time.monotonic() > deadline:
            assert len(messages) == count, messages
            return _code_of(messages[0].body)
        time.sleep(0.05)


async def aread_code(client: AsyncOtpClient, verification_id: str, *, count: int = 1) -> str:
    """The code in the sandbox inbox once `count` messages arrived (asyncio client)."""
    deadline = time.monotonic() + 15
    while True:
        messages = await client.sandbox_messages(verification_id=verification_id, wait=10)
        if len(messages) >= count or time.monotonic() > deadline:
            assert len(messages) == count, messages
            return _code_of(messages[0].body)
        await asyncio.sleep(0.05)


@dataclass
class Exchange:
    method: str
    path: str
    idempotency_key: str | None
    status: int
    replayed: bool
    lost: bool


@dataclass
class _Losing:
    """Lose the answer of the first request to a path ending in `suffix` (sent, then dropped)."""

    method: str
    suffix: str
    exchanges: list[Exchange] = field(default_factory=list)
    lost: bool = False

    def _note(self, request: httpx.Request, response: httpx.Response) -> bool:
        lose = (
            not self.lost
            and request.method == self.method
            and request.url.path.endswith(self.suffix)
        )
        self.lost = self.lost or lose
        self.exchanges.append(
            Exchange(
                method=request.method,
                path=request.url.path,
                idempotency_key=request.headers.get("idempotency-key"),
                status=response.status_code,
                replayed=response.headers.get("idempotent-replayed") == "true",
                lost=lose,
            )
        )
        return lose

    def to(self, method: str, suffix: str) -> list[Exchange]:
        return [e for e in self.exchanges if e.method == method and e.path.endswith(suffix)]


class LosingTransport(_Losing, httpx.BaseTransport):
    """Forwards to the real server; the first matching answer arrives, then times out."""

    def __init__(self, method: str, suffix: str) -> None:
        super().__init__(method, suffix)
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if self._note(request, response):
            response.read()
            response.close()
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


class AsyncLosingTransport(_Losing, httpx.AsyncBaseTransport):
    """`LosingTransport` for the asyncio client."""

    def __init__(self, method: str, suffix: str) -> None:
        super().__init__(method, suffix)
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if self._note(request, response):
            await response.aread()
            await response.aclose()
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
