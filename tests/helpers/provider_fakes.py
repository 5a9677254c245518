"""Local stand-ins for Twilio, Meta WhatsApp Cloud, an HTTP SMS gateway and an SMTP server.

Each HTTP fake is a Starlette app served by uvicorn on a pre-bound free 127.0.0.1 port,
in the test's event loop. They check credentials the way the real APIs do, answer with
realistic bodies, record every request, and send delivery receipts back to the URL the
real provider would use (Twilio: the `StatusCallback` it was given; Meta: the webhook URL
configured in the app dashboard), signed with our own HMAC code (not the production
helpers), so the API's signature checks are exercised independently.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import secrets
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, Self
from urllib.parse import parse_qsl

import httpx
import uvicorn
from aiosmtpd.controller import Controller
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


# ----------------------------------------------------------------- signatures
def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """Twilio's rule: base64 HMAC-SHA1 of the URL + each POST parameter sorted by name."""
    data = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def meta_signature(app_secret: str, body: bytes) -> str:
    """Meta's rule: `sha256=` + hex HMAC-SHA256 of the raw body, keyed with the app secret."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


# --------------------------------------------------------------- plumbing
@dataclass
class Received:
    """One request a fake received (and the id it answered with, if it accepted it)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival
    form: dict[str, str] = field(default_factory=dict)
    json: Any = None
    answered: int = 0
    id: str = ""


@dataclass(frozen=True)
class Callback:
    """A receipt a fake sent: when it started (monotonic) and what the API answered."""

    started: float
    finished: float
    status_code: int
    body: str


async def _wait_for(
    predicate: Callable[[], bool], what: str, within: float, interval: float = 0.01
) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(interval)


class FakeHttpServer:
    """uvicorn on a pre-bound free port; subclasses add routes and record requests."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self.requests: list[Received] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        config = uvicorn.Config(
            Starlette(routes=list(routes)),
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None
        # Receipts go out on their own client, as they would from the provider's network.
        self.outbound = httpx.AsyncClient(timeout=10)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        await _wait_for(lambda: self._server.started, "the fake server to start", 5)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
        self._sock.close()
        await self.outbound.aclose()

    async def record(self, request: Request) -> Received:
        body = await request.body()
        received = Received(
            method=request.method,
            path=request.url.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            at=time.monotonic(),
        )
        content_type = received.headers.get("content-type", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            received.form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        elif content_type.startswith("application/json"):
            received.json = json.loads(body)
        self.requests.append(received)
        return received

    async def wait_for_requests(self, count: int, within: float = 5.0) -> list[Received]:
        await _wait_for(lambda: len(self.requests) >= count, f"{count} request(s)", within)
        return self.requests

    async def post(self, url: str, **kwargs: Any) -> Callback:
        started = time.monotonic()
        response = await self.outbound.post(url, **kwargs)
        return Callback(started, time.monotonic(), response.status_code, response.text)


# ----------------------------------------------------------------------- Twilio
class TwilioFake(FakeHttpServer):
    """Twilio REST 2010-04-01: Messages.json and Calls.json (create, and fetch one with its
    price), Basic auth, status callbacks (with `Price`/`PriceUnit` once `prices` has it)."""

    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        # Scripted refusals for Messages.json, used in order: (HTTP status, Twilio error code).
        self.message_failures: list[tuple[int, int]] = []
        # What Twilio charged per message or call sid, as its resources write it
        # (`("-0.00790", "USD")`); a sid without one is not priced yet (`"price": null`).
        self.prices: dict[str, tuple[str, str]] = {}
        base = "/2010-04-01/Accounts/{account}"
        super().__init__(
            [
                Route(base + "/Messages.json", self._messages, methods=["POST"]),
                Route(base + "/Calls.json", self._calls, methods=["POST"]),
                Route(base + "/Messages/{sid}.json", self._fetched, methods=["GET"]),
                Route(base + "/Calls/{sid}.json", self._fetched, methods=["GET"]),
            ]
        )

    def _authorised(self, request: Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return hmac.compare_digest(request.headers.get("authorization", ""), f"Basic {expected}")

    def _error(self, received: Received, status: int, code: int, message: str) -> Response:
        received.answered = status
        return JSONResponse(
            {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
            status_code=status,
        )

    async def _messages(self, request: Request) -> Response:
        received = await self.record(request)
        if not self._authorised(request) or request.path_params["account"] != self.account_sid:
            return self._error(received, 401, 20003, "Authenticate")
        if self.message_failures:
            status, code = self.message_failures.pop(0)
            return self._error(received, status, code, f"scripted failure {code}")
        form = received.form
        received.id = "SM" + secrets.token_hex(16)
        received.answered = 201
        now = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
        return JSONResponse(
            {
                "account_sid": self.account_sid,
                "api_version": "2010-04-01",
                "body": form.get("Body", ""),
                "date_created": now,
                "date_sent": None,
                "date_updated": now,
                "direction": "outbound-api",
                "error_code": None,
                "error_message": None,
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "num_media": "0",
                "num_segments": "1",
                "price": None,
                "price_unit": "USD",
                "sid": received.id,
                "status": "queued",
                "to": form.get("To"),
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{received.id}.json",
            },
            status_code=201,
        )

    async def _calls(self, request: Request) -> Response:
        received = await self.record(request)
        if not self._authorised(request) or request.path_params["account"] != self.account_sid:
            return self._error(received, 401, 20003, "Authenticate")
        form = received.form
        received.id = "CA" + secrets.token_hex(16)
        received.answered = 201
        return JSONResponse(
            {
                "account_sid": self.account_sid,
                "api_version": "2010-04-01",
                "direction": "outbound-api",
                "from": form.get("From"),
                "to": form.get("To"),
                "sid": received.id,
                "status": "queued",
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/{received.id}.json",
            },
            status_code=201,
        )

    async def _fetched(self, request: Request) -> Response:
        """GET one message or call: its sid, status and price (null until priced)."""
        received = await self.record(request)
        if not self._authorised(request) or request.path_params["account"] != self.account_sid:
            return self._error(received, 401, 20003, "Authenticate")
        sid = request.path_params["sid"]
        if not any(r.id == sid for r in self.requests):
            return self._error(received, 404, 20404, "The requested resource was not found")
        received.answered = 200
        price, unit = self.prices.get(sid, (None, "USD"))
        return JSONResponse(
            {
                "account_sid": self.account_sid,
                "sid": sid,
                "status": "delivered" if sid.startswith("SM") else "completed",
                "price": price,
                "price_unit": unit,
            }
        )

    def sent(self, kind: str) -> list[Received]:
        """Accepted requests of one kind: `Messages` or `Calls`."""
        return [r for r in self.requests if r.path.endswith(f"/{kind}.json") and r.answered == 201]

    async def wait_for_sent(self, kind: str, count: int = 1, within: float = 5.0) -> Received:
        await _wait_for(lambda: len(self.sent(kind)) >= count, f"{count} accepted {kind}", within)
        return self.sent(kind)[count - 1]

    def status_form(self, sent: Received, status: str, error_code: str | None) -> dict[str, str]:
        """The form Twilio posts to `StatusCallback` for a message or a call."""
        common = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "From": sent.form["From"],
            "To": sent.form["To"],
        }
        if sent.path.endswith("/Calls.json"):
            form = {
                **common,
                "CallSid": sent.id,
                "CallStatus": status,
                "Direction": "outbound-api",
                "Called": sent.form["To"],
                "Caller": sent.form["From"],
                "CallDuration": "0",
                "Duration": "0",
                "CallbackSource": "call-progress-events",
                "SequenceNumber": "0",
                "Timestamp": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
            }
        else:
            form = {
                **common,
                "MessageSid": sent.id,
                "SmsSid": sent.id,
                "MessageStatus": status,
                "SmsStatus": status,
            }
        if error_code is not None:
            form["ErrorCode"] = error_code
        if sent.id in self.prices:
            form["Price"], form["PriceUnit"] = self.prices[sent.id]
        return form

    async def status_callback(
        self,
        sent: Received,
        status: str,
        *,
        error_code: str | None = None,
        sign_with: str | None = None,
        signature: str | None = None,
    ) -> Callback:
        """POST a signed status callback to the `StatusCallback` URL of `sent`.

        `sign_with` signs with another token; `signature` sends that exact header value
        (empty: no header at all)."""
        url = sent.form["StatusCallback"]
        form = self.status_form(sent, status, error_code)
        if signature is None:
            signature = twilio_signature(sign_with or self.auth_token, url, form)
        headers = {"X-Twilio-Signature": signature} if signature else {}
        return await self.post(url, data=form, headers=headers)


# ------------------------------------------------------------------------- Meta
class MetaFake(FakeHttpServer):
    """WhatsApp Cloud API: POST /{version}/{phone_number_id}/messages, Bearer auth, webhooks."""

    def __init__(
        self, *, api_version: str, phone_number_id: str, access_token: str, app_secret: str
    ) -> None:
        self.api_version = api_version
        self.phone_number_id = phone_number_id
        self.access_token = access_token
        self.app_secret = app_secret
        self.webhook_url = ""  # set in the "app dashboard" (subscribe)
        self._ids = itertools.count(1)
        super().__init__(
            [Route("/{version}/{phone_number_id}/messages", self._messages, methods=["POST"])]
        )

    async def _messages(self, request: Request) -> Response:
        received = await self.record(request)
        authorised = hmac.compare_digest(
            request.headers.get("authorization", ""), f"Bearer {self.access_token}"
        )
        if not authorised:
            received.answered = 401
            return JSONResponse(
                {
                    "error": {
                        "message": "Invalid OAuth access token - Cannot parse access token",
                        "type": "OAuthException",
                        "code": 190,
                        "fbtrace_id": "AbCdEf",
                    }
                },
                status_code=401,
            )
        if (
            request.path_params["version"] != self.api_version
            or request.path_params["phone_number_id"] != self.phone_number_id
        ):
            received.answered = 400
            return JSONResponse(
                {
                    "error": {
                        "message": "Unsupported post request",
                        "type": "GraphMethodException",
                        "code": 100,
                    }
                },
                status_code=400,
            )
        to = received.json["to"]
        received.id = f"wamid.HBgL{to}FQIAERgS{next(self._ids):020d}"
        received.answered = 200
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": received.id, "message_status": "accepted"}],
            }
        )

    def sent(self) -> list[Received]:
        return [r for r in self.requests if r.answered == 200]

    async def wait_for_sent(self, count: int = 1, within: float = 5.0) -> Received:
        await _wait_for(lambda: len(self.sent()) >= count, f"{count} whatsapp message(s)", within)
        return self.sent()[count - 1]

    async def subscribe(self, webhook_url: str, verify_token: str) -> None:
        """What the app dashboard does when the callback URL is saved: the verify challenge."""
        challenge = secrets.token_hex(8)
        response = await self.outbound.get(
            webhook_url,
            params={
                "hub.mode": "subscribe",
                "hub.verify_token": verify_token,
                "hub.challenge": challenge,
            },
        )
        if response.status_code != 200 or response.text != challenge:
            raise AssertionError(f"subscription refused: {response.status_code} {response.text}")
        self.webhook_url = webhook_url

    def status_payload(
        self,
        message_id: str,
        recipient: str,
        status: str,
        *,
        reference: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A `messages` webhook holding one status, as the Cloud API sends it."""
        entry: dict[str, Any] = {
            "id": message_id,
            "status": status,
            "timestamp": str(int(time.time())),
            "recipient_id": recipient,
        }
        if reference is not None:
            entry["biz_opaque_callback_data"] = reference
        if errors:
            entry["errors"] = errors
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "102290129340398",
                    "changes": [
                        {
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": "15550783881",
                                    "phone_number_id": self.phone_number_id,
                                },
                                "statuses": [entry],
                            },
                            "field": "messages",
                        }
                    ],
                }
            ],
        }

    async def status_webhook(
        self,
        sent: Received,
        status: str,
        *,
        errors: list[dict[str, Any]] | None = None,
    ) -> Callback:
        """POST a signed status webhook for a message this fake accepted."""
        payload = self.status_payload(
            sent.id,
            sent.json["to"],
            status,
            reference=sent.json.get("biz_opaque_callback_data"),
            errors=errors,
        )
        return await self.webhook(payload)

    async def webhook(self, payload: dict[str, Any], *, sign_with: str | None = None) -> Callback:
        """POST `payload` to the subscribed webhook URL, signed with the app secret."""
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": meta_signature(sign_with or self.app_secret, body),
        }
        return await self.post(self.webhook_url, content=body, headers=headers)


# ------------------------------------------------------------------ HTTP gateway
class GatewayFake(FakeHttpServer):
    """A generic JSON SMS gateway: one POST per message, a header token, a nested id."""

    def __init__(self, auth_header: str, auth_value: str) -> None:
        self.auth_header = auth_header.lower()
        self.auth_value = auth_value
        self._ids = itertools.count(1)
        super().__init__([Route("/v1/sms", self._send, methods=["POST"])])

    async def _send(self, request: Request) -> Response:
        received = await self.record(request)
        if not hmac.compare_digest(received.headers.get(self.auth_header, ""), self.auth_value):
            received.answered = 401
            return JSONResponse({"error": "unauthorised"}, status_code=401)
        received.id = f"gw-{next(self._ids)}"
        received.answered = 202
        return JSONResponse({"message": {"id": received.id, "status": "queued"}}, status_code=202)

    def sent(self) -> list[Received]:
        return [r for r in self.requests if r.answered == 202]

    async def wait_for_sent(self, count: int = 1, within: float = 5.0) -> Received:
        await _wait_for(lambda: len(self.sent()) >= count, f"{count} gateway SMS", within)
        return self.sent()[count - 1]


# ------------------------------------------------------------------------- SMTP
@dataclass
class SmtpSink:
    """An aiosmtpd handler that accepts and keeps every message (with its arrival time)."""

    received: list[tuple[float, list[str], EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append((time.monotonic(), list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    async def wait_for_message(self, within: float = 5.0) -> EmailMessage:
        await _wait_for(lambda: bool(self.received), "an email", within)
        return self.received[0][2]


class SmtpServer:
    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port: int = sock.getsockname()[1]
        self.sink = SmtpSink()
        self._controller = Controller(self.sink, hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()
