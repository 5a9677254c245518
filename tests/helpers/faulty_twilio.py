"""A fault-injecting Twilio: the Messages API of `TwilioFake`, with scripted bad days.

`FaultyTwilio` extends `tests.helpers.provider_fakes.TwilioFake` (same wire format: form posts, HTTP
Basic auth, JSON resources and error bodies, signed `StatusCallback` receipts) with:

- a script of behaviours, one popped per `POST .../Messages.json`, per destination
  number (`script(to, ...)`) or for any destination (`script(None, ...)`); with nothing
  scripted a message is accepted:
  - `Refuse(503)`, `Refuse(429, retry_after=2)`: Twilio's JSON error and, if given,
    `Retry-After`; nothing is sent;
  - `Hang(s)`: no answer for `s` seconds (longer than the client waits), then the
    connection is closed; nothing is sent;
  - `AcceptThenDrop(s)`: the message is accepted (it is queued for the handset and
    listed) but after `s` seconds the connection is closed without an answer;
  - `Accept(queue_s=..., receipts=..., answer_after_s=...)`: accepted and answered 201
    (`answer_after_s` later: a slow answer the client still waits for);
- a handset: an accepted message reaches it `queue_s` after acceptance, unless its
  `ValidityPeriod` runs out first; then Twilio's `failed` receipt with error 30036 goes
  out instead, as Twilio does with a message that waited too long in its queue;
- receipts sent late on purpose (`Receipt("delivered", after_s=7)`), from acceptance,
  whether or not the verification still runs; and `receipt_now(...)` for one at once;
- `GET .../Messages.json` (newest first, `To`/`From` filters, RFC 2822 `date_created`),
  which the adapter reads to reconcile a send whose answer was lost; its own faults are
  scripted with `script_lookup(...)` (`Refuse` or `Hang`).

Every request is kept as an `Exchange` (arrival on the monotonic and the wall clock,
destination, the delivery key from `StatusCallback`'s `ref`, what was done with it), and
every accepted message as a `Message` (where and when it reached the handset, receipts).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import parse_qsl, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.helpers.provider_fakes import Callback, Received, TwilioFake

# Twilio error codes the fault answers carry.
_UNAVAILABLE = {500: 20500, 502: 20500, 503: 20503, 504: 20500}
_RATE_LIMITED = 20429
VALIDITY_EXPIRED = "30036"  # "Validity Period Expired": dropped from Twilio's queue, not sent


@dataclass(frozen=True)
class Receipt:
    """A status callback sent `after_s` seconds after the message was accepted."""

    status: str  # queued, sent, delivered, undelivered, failed
    after_s: float = 0.0
    error_code: str | None = None


@dataclass(frozen=True)
class Accept:
    """Accept and answer 201, `answer_after_s` later (a slow answer, within the client's
    timeout). The handset gets it `queue_s` after acceptance (unless its validity period
    runs out first); `receipts` are sent as scripted."""

    queue_s: float = 0.0
    receipts: tuple[Receipt, ...] = ()
    answer_after_s: float = 0.0

    @property
    def label(self) -> str:
        return "accepted"


@dataclass(frozen=True)
class AcceptThenDrop(Accept):
    """Accept (handset and list as `Accept`), then close the connection after `hold_s`
    without answering: the client cannot know the message went out."""

    hold_s: float = 0.0

    @property
    def label(self) -> str:
        return "accepted_then_dropped"


@dataclass(frozen=True)
class Refuse:
    """Twilio's JSON error with `status` (and `Retry-After` if given); nothing is sent."""

    status: int = 503
    retry_after: int | str | None = None

    @property
    def code(self) -> int:
        return _RATE_LIMITED if self.status == 429 else _UNAVAILABLE.get(self.status, 20500)

    @property
    def label(self) -> str:
        return f"refused_{self.status}"


@dataclass(frozen=True)
class Hang:
    """No answer for `seconds`, then the connection is closed; nothing is sent."""

    seconds: float

    @property
    def label(self) -> str:
        return "hung"


Behaviour = Accept | Refuse | Hang


@dataclass
class Exchange:
    """One request to the Messages API and what the fault provider did with it."""

    method: str
    at: float  # time.monotonic() on arrival
    at_utc: datetime
    to: str
    reference: str  # the delivery key from StatusCallback's `ref` (sends only)
    behaviour: str = ""  # the behaviour's label, or "listed" for a lookup answered
    received: Received | None = None
    answered_at: float | None = None  # when the answer (or the close) went out


@dataclass
class SentReceipt:
    status: str
    error_code: str | None
    callback: Callback


@dataclass
class Message:
    """A message the provider accepted."""

    sid: str
    to: str
    body: str
    reference: str
    validity_s: int | None
    accepted_at: float
    accepted_utc: datetime
    received: Received
    handset_at: float | None = None  # when it reached the phone (never: None)
    handset_utc: datetime | None = None
    expired_in_queue: bool = False
    receipts: list[SentReceipt] = field(default_factory=list)


def _reference(callback_url: str) -> str:
    for name, value in parse_qsl(urlsplit(callback_url).query, keep_blank_values=True):
        if name == "ref":
            return value
    return ""


class FaultyTwilio(TwilioFake):
    def __init__(self, account_sid: str, auth_token: str) -> None:
        super().__init__(account_sid, auth_token)
        self.exchanges: list[Exchange] = []
        self.messages: list[Message] = []
        self._scripts: dict[str | None, deque[Behaviour]] = {}
        self._lookup_script: deque[Refuse | Hang] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = asyncio.Event()
        app = self._server.config.app
        if not isinstance(app, Starlette):
            raise TypeError("TwilioFake serves a Starlette app")
        base = "/2010-04-01/Accounts/{account}"
        # After the POST route of the same path: Starlette picks the one whose method fits.
        app.router.routes.append(Route(base + "/Messages.json", self._list, methods=["GET"]))

    # ------------------------------------------------------------------ script
    def script(self, to: str | None, *behaviours: Behaviour) -> None:
        """Queue behaviours for sends to `to` (None: to any destination without its own)."""
        self._scripts.setdefault(to, deque()).extend(behaviours)

    def script_lookup(self, *behaviours: Refuse | Hang) -> None:
        """Queue faults for the message list (reconciliation lookups)."""
        self._lookup_script.extend(behaviours)

    def _next(self, to: str) -> Behaviour:
        for key in (to, None):
            queue = self._scripts.get(key)
            if queue:
                return queue.popleft()
        return Accept()

    # ----------------------------------------------------------------- records
    def sends(self, to: str | None = None) -> list[Exchange]:
        """Every send request (to `to`), in arrival order."""
        return [e for e in self.exchanges if e.method == "POST" and (to is None or e.to == to)]

    def lookups(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.method == "GET"]

    def accepted(self, to: str | None = None) -> list[Message]:
        return [m for m in self.messages if to is None or m.to == to]

    def on_handset(self, to: str) -> list[Message]:
        """The messages that actually reached the phone `to`."""
        return [m for m in self.messages if m.to == to and m.handset_at is not None]

    async def wait_for_sends(self, count: int, *, to: str | None = None, within: float) -> None:
        deadline = time.monotonic() + within
        while len(self.sends(to)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.sends(to))} of {count} sends in {within}s")
            await asyncio.sleep(0.01)

    async def wait_for_handset(self, to: str, *, within: float) -> Message:
        """The first message that reached the phone `to`."""
        deadline = time.monotonic() + within
        while not self.on_handset(to):
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing reached the phone within {within}s")
            await asyncio.sleep(0.01)
        return self.on_handset(to)[0]

    async def wait_for_receipt(self, message: Message, status: str, *, within: float) -> Callback:
        """The API's answer to `message`'s receipt `status`, once it was sent."""
        deadline = time.monotonic() + within
        while True:
            for sent in message.receipts:
                if sent.status == status:
                    return sent.callback
            if time.monotonic() > deadline:
                raise AssertionError(f"no {status} receipt sent within {within}s")
            await asyncio.sleep(0.01)

    # --------------------------------------------------------------- lifecycle
    async def stop(self) -> None:
        self._closing.set()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await super().stop()

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _pause(self, seconds: float) -> None:
        """Sleep, cut short when the server stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), timeout=seconds)

    async def _drop(self, request: Request, exchange: Exchange) -> Response:
        """Close the request's connection without an answer."""
        client = request.scope.get("client")
        for connection in list(self._server.server_state.connections):
            peer = getattr(connection, "client", None)
            transport = getattr(connection, "transport", None)
            if client is not None and peer == tuple(client) and transport is not None:
                transport.close()
        exchange.answered_at = time.monotonic()
        await asyncio.sleep(0.05)  # let uvicorn see the connection lost: nothing is written
        return Response(status_code=204)

    # ------------------------------------------------------------------ routes
    def _exchange(self, method: str, received: Received | None, to: str) -> Exchange:
        callback = received.form.get("StatusCallback", "") if received else ""
        exchange = Exchange(
            method=method,
            at=received.at if received else time.monotonic(),
            at_utc=datetime.now(UTC),
            to=to,
            reference=_reference(callback),
            received=received,
        )
        self.exchanges.append(exchange)
        return exchange

    async def _messages(self, request: Request) -> Response:
        received = await self.record(request)
        if not self._authorised(request) or request.path_params["account"] != self.account_sid:
            return self._error(received, 401, 20003, "Authenticate")
        to = received.form.get("To", "")
        exchange = self._exchange("POST", received, to)
        behaviour = self._next(to)
        exchange.behaviour = behaviour.label
        if isinstance(behaviour, Refuse):
            response = self._error(
                received, behaviour.status, behaviour.code, f"scripted {behaviour.status}"
            )
            if behaviour.retry_after is not None:
                response.headers["Retry-After"] = str(behaviour.retry_after)
            exchange.answered_at = time.monotonic()
            return response
        if isinstance(behaviour, Hang):
            await self._pause(behaviour.seconds)
            return await self._drop(request, exchange)
        message = self._accept(received, exchange, behaviour)
        if isinstance(behaviour, AcceptThenDrop):
            await self._pause(behaviour.hold_s)
            return await self._drop(request, exchange)
        if behaviour.answer_after_s > 0:
            await self._pause(behaviour.answer_after_s)
        exchange.answered_at = time.monotonic()
        return JSONResponse(self._resource(message, "queued"), status_code=201)

    def _accept(self, received: Received, exchange: Exchange, behaviour: Accept) -> Message:
        form = received.form
        received.id = "SM" + secrets.token_hex(16)
        received.answered = 201
        validity = form.get("ValidityPeriod")
        message = Message(
            sid=received.id,
            to=form.get("To", ""),
            body=form.get("Body", ""),
            reference=exchange.reference,
            validity_s=int(validity) if validity and validity.isdigit() else None,
            accepted_at=exchange.at,
            accepted_utc=exchange.at_utc,
            received=received,
        )
        self.messages.append(message)
        self._spawn(self._handset(message, behaviour.queue_s))
        for receipt in behaviour.receipts:
            self._spawn(self._receipt_later(message, receipt))
        return message

    async def _handset(self, message: Message, queue_s: float) -> None:
        """Deliver to the phone after the queue, or drop it when its validity runs out."""
        if message.validity_s is not None and queue_s > message.validity_s:
            await self._pause(message.validity_s)
            message.expired_in_queue = True
            await self.receipt_now(message, "failed", error_code=VALIDITY_EXPIRED)
            return
        if queue_s > 0:
            await self._pause(queue_s)
        if not self._closing.is_set():
            message.handset_at = time.monotonic()
            message.handset_utc = datetime.now(UTC)

    async def _receipt_later(self, message: Message, receipt: Receipt) -> None:
        await self._pause(max(0.0, message.accepted_at + receipt.after_s - time.monotonic()))
        if not self._closing.is_set():
            await self.receipt_now(message, receipt.status, error_code=receipt.error_code)

    async def receipt_now(
        self, message: Message, status: str, *, error_code: str | None = None
    ) -> Callback:
        """POST a signed status callback for `message` to its `StatusCallback` now."""
        callback = await self.status_callback(message.received, status, error_code=error_code)
        message.receipts.append(SentReceipt(status, error_code, callback))
        return callback

    def _resource(self, message: Message, status: str) -> dict[str, object]:
        stamp = format_datetime(message.accepted_utc, usegmt=True)
        form = message.received.form
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": message.body,
            "date_created": stamp,
            "date_sent": None,
            "date_updated": stamp,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_segments": "1",
            "sid": message.sid,
            "status": status,
            "to": message.to,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{message.sid}.json",
        }

    async def _list(self, request: Request) -> Response:
        if not self._authorised(request) or request.path_params["account"] != self.account_sid:
            return JSONResponse({"code": 20003, "message": "Authenticate"}, status_code=401)
        params = request.query_params
        exchange = self._exchange("GET", None, params.get("To", ""))
        fault = self._lookup_script.popleft() if self._lookup_script else None
        if isinstance(fault, Hang):
            exchange.behaviour = fault.label
            await self._pause(fault.seconds)
            return await self._drop(request, exchange)
        if isinstance(fault, Refuse):
            exchange.behaviour = fault.label
            exchange.answered_at = time.monotonic()
            return JSONResponse(
                {"code": fault.code, "message": "scripted", "status": fault.status},
                status_code=fault.status,
            )
        exchange.behaviour = "listed"
        size = int(params.get("PageSize", "50"))
        items = [
            self._resource(m, "delivered" if m.handset_at is not None else "sent")
            for m in reversed(self.messages)
            if ("To" not in params or m.to == params["To"])
            and ("From" not in params or m.received.form.get("From") == params["From"])
        ][:size]
        exchange.answered_at = time.monotonic()
        return JSONResponse(
            {"messages": items, "page": 0, "page_size": size, "start": 0, "end": len(items)}
        )
