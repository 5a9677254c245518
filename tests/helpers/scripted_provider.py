"""A scriptable local HTTP server standing in for a provider, and message builders."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from otp.domain import Channel
from providers.base import OutboundMessage


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    form: dict[str, str] = field(default_factory=dict)
    json: Any = None


Handler = Callable[[Recorded], Awaitable[Response] | Response]


def _not_scripted(_: Recorded) -> Response:
    return JSONResponse({"error": "no handler scripted for this test"}, status_code=599)


class ProviderServer:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.handler: Handler = _not_scripted
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        app = Starlette(
            routes=[Route("/{path:path}", self._endpoint, methods=["GET", "POST", "PUT"])]
        )
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def _endpoint(self, request: Request) -> Response:
        body = await request.body()
        recorded = Recorded(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
        )
        content_type = recorded.headers.get("content-type", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            recorded.form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        elif content_type.startswith("application/json"):
            recorded.json = json.loads(body)
        self.requests.append(recorded)
        result = self.handler(recorded)
        if isinstance(result, Response):
            return result
        return await result

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        while not self._server.started:
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
        self._sock.close()

    def reset(self) -> None:
        self.requests.clear()
        self.handler = _not_scripted


def outbound(
    channel: Channel = Channel.SMS,
    *,
    to: str = "+14155550123",
    code: str = "482915",
    locale: str = "en",
    text: str | None = None,
    key: str = "ver_0123456789abcdef:1",
) -> OutboundMessage:
    return OutboundMessage(
        verification_id="ver_0123456789abcdef",
        application_id="app_test",
        channel=channel,
        to=to,
        subject="Your verification code",
        text=text if text is not None else f"Acme: Your verification code is {code}.",
        idempotency_key=key,
        locale=locale,
        code=code,
    )
