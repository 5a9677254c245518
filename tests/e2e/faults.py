"""A fault-injecting Twilio: the Messages API with scripted failures, one per request.

`FaultyTwilio` speaks the same wire format as `TwilioFake` (form posts, Basic auth, JSON
resources, signed status callbacks) and adds what a provider does on a bad day:

- `Fault.status(503)` / `Fault.status(429, retry_after=2)`: a refusal with Twilio's JSON
  error body and, if given, `Retry-After`; nothing is sent to the phone;
- `Fault.hang(s)`: no answer for `s` seconds, then a refusal (the client has given up by
  then: it never learns that nothing was sent);
- `Fault.accept_then_drop(s)`: the message is accepted (it reaches the phone and shows up
  in the message list), but the answer is held back for `s` seconds, past the client's
  read timeout;
- no fault left: the message is accepted and answered at once.

`GET .../Messages.json` lists accepted messages newest first with `date_created`, as the
adapter's reconciliation (`find_sent`) reads them. `phone` holds what the destination
actually received, so a test can tell a lost answer from a lost message.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.e2e.fakes import Received, TwilioFake


@dataclass(frozen=True)
class Fault:
    kind: str  # "status", "hang" or "accept_then_drop"
    status: int = 503
    code: int = 20500
    retry_after: int | None = None
    seconds: float = 0.0

    @classmethod
    def status_code(cls, status: int, *, retry_after: int | None = None) -> Fault:
        code = 20429 if status == 429 else 20500 if status == 500 else 20503
        return cls("status", status=status, code=code, retry_after=retry_after)

    @classmethod
    def hang(cls, seconds: float) -> Fault:
        return cls("hang", seconds=seconds)

    @classmethod
    def accept_then_drop(cls, seconds: float) -> Fault:
        return cls("accept_then_drop", seconds=seconds)


@dataclass
class Delivered:
    """A message that reached the destination: when (monotonic and UTC) and its body."""

    at: float
    at_utc: datetime
    to: str
    body: str
    sid: str
    received: Received


class FaultyTwilio(TwilioFake):
    def __init__(self, account_sid: str, auth_token: str) -> None:
        super().__init__(account_sid, auth_token)
        self.script: list[Fault] = []
        self.phone: list[Delivered] = []
        app = self._server.config.app
        assert isinstance(app, Starlette)
        app.router.routes.insert(
            0,
            Route(
                "/2010-04-01/Accounts/{account}/Messages.json",
                self._list_messages,
                methods=["GET"],
            ),
        )

    def posts(self) -> list[Received]:
        return [
            r for r in self.requests if r.method == "POST" and r.path.endswith("/Messages.json")
        ]

    def _refuse(self, received: Received, fault: Fault) -> Response:
        response = self._error(received, fault.status, fault.code, f"scripted {fault.status}")
        if fault.retry_after is not None:
            response.headers["Retry-After"] = str(fault.retry_after)
        return response

    def _accept(self, received: Received) -> Response:
        form = received.form
        received.id = "SM" + secrets.token_hex(16)
        received.answered = 201
        now = datetime.now(UTC)
        self.phone.append(
            Delivered(
                time.monotonic(), now, form["To"], form.get("Body", ""), received.id, received
            )
        )
        stamp = format_datetime(now, usegmt=True)
        return JSONResponse(
            {
                "account_sid": self.account_sid,
                "api_version": "2010-04-01",
                "body": form.get("Body", ""),
                "date_created": stamp,
                "date_updated": stamp,
                "direction": "outbound-api",
                "from": form.get("From"),
                "sid": received.id,
                "status": "queued",
                "to": form["To"],
            },
            status_code=201,
        )

    async def _messages(self, request: Request) -> Response:
        received = await self.record(request)
        if not self._authorised(request) or request.path_params["account"] != self.account_sid:
            return self._error(received, 401, 20003, "Authenticate")
        fault = self.script.pop(0) if self.script else None
        if fault is None:
            return self._accept(received)
        if fault.kind == "status":
            return self._refuse(received, fault)
        if fault.kind == "hang":
            await asyncio.sleep(fault.seconds)
            return self._refuse(received, Fault.status_code(503))
        # accept_then_drop: on the phone now, the answer comes too late to be read.
        response = self._accept(received)
        await asyncio.sleep(fault.seconds)
        return response

    async def _list_messages(self, request: Request) -> Response:
        if not self._authorised(request) or request.path_params["account"] != self.account_sid:
            return JSONResponse({"code": 20003, "message": "Authenticate"}, status_code=401)
        to = request.query_params.get("To")
        items = [
            {
                "sid": d.sid,
                "to": d.to,
                "from": d.received.form.get("From"),
                "body": d.body,
                "status": "sent",
                "date_created": format_datetime(d.at_utc, usegmt=True),
            }
            for d in reversed(self.phone)
            if to is None or d.to == to
        ]
        return JSONResponse({"messages": items, "page": 0, "page_size": len(items)})

    def delivered_to(self, to: str) -> list[Delivered]:
        return [d for d in self.phone if d.to == to]
