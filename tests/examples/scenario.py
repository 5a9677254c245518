"""What a browser and the service do to an example app, shared by the Express and FastAPI tests.

Each example runs as a real process on a free port (`running`), configured only through
its environment, and is driven over HTTP like a browser: form posts, redirects followed,
cookies kept. Codes are read from the service's sandbox inbox, as a person would read
their phone. Webhooks come both from the service itself (a real delivery after the
sign-in) and signed here with the `standardwebhooks` package.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from otp_client import AsyncOtpClient
from standardwebhooks import Webhook

from tests.helpers.api import CODE_RE, Keys, wrong_code
from tests.helpers.serving import free_port

ROOT = Path(__file__).resolve().parents[2]
KNOWN = "+15005550006"  # a sandbox number that is delivered to the inbox
KNOWN_AS_TYPED = "+1 500 555-0006"
CHECK_FLOOR_S = 0.3  # both examples answer no check sooner than this
STARTUP_TIMEOUT_S = 30


@dataclass(frozen=True)
class Example:
    url: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    async def wait_for_log(self, text: str, timeout_s: float = 15) -> str:
        """The example's output once it contains `text`."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while text not in (output := self.log_text()):
            assert asyncio.get_running_loop().time() < deadline, f"no {text!r} in\n{output}"
            await asyncio.sleep(0.05)
        return output


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


@asynccontextmanager
async def running(
    argv: Sequence[str], *, cwd: Path, port: int, env: Mapping[str, str], log: Path
) -> AsyncIterator[Example]:
    """The example process, once it answers HTTP on `port`; terminated on exit."""
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_PROXY": "127.0.0.1", **env}
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as output:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=environment,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            await _until_up(url, proc, log)
            yield Example(url=url, log=log)
        finally:
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 10)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


async def _until_up(url: str, proc: asyncio.subprocess.Process, log: Path) -> None:
    deadline = asyncio.get_running_loop().time() + STARTUP_TIMEOUT_S
    async with httpx.AsyncClient(base_url=url, trust_env=False) as probe:
        while True:
            if proc.returncode is not None:
                raise AssertionError(f"exited with {proc.returncode}\n{log.read_text()}")
            try:
                await probe.get("/")
                return
            except httpx.TransportError:
                pass
            assert asyncio.get_running_loop().time() < deadline, f"not up\n{log.read_text()}"
            await asyncio.sleep(0.1)


async def register_endpoint(service_url: str, keys: Keys, url: str) -> str:
    """A webhook endpoint of the service pointing at `url`; its `whsec_` secret."""
    async with AsyncOtpClient(keys.test, base_url=service_url) as otp:
        created = await otp.create_webhook_endpoint(url, description="example app")
    return created.secret


def browser(example: Example) -> httpx.AsyncClient:
    """A client that keeps cookies and follows redirects, like a browser."""
    return httpx.AsyncClient(base_url=example.url, follow_redirects=True, trust_env=False)


async def sandbox_messages(service: httpx.AsyncClient, to: str, wait: float) -> list[str]:
    """Bodies of the messages the service's sandbox holds for `to`."""
    response = await service.get("/v1/sandbox/messages", params={"to": to, "wait": wait})
    assert response.status_code == 200, response.text
    return [message["body"] for message in response.json()["messages"]]


def neutral(text: str, identifier: str) -> str:
    return text.replace(identifier, "<identifier>")


async def sign_in(example: Example, service_url: str, keys: Keys) -> None:
    """A known user signs in (wrong code, then the right one); an unknown user learns nothing."""
    unknown = f"nobody-{uuid.uuid4().hex[:10]}@example.com"
    async with (
        browser(example) as alice,
        browser(example) as stranger,
        httpx.AsyncClient(
            base_url=service_url, headers=keys.test_headers, trust_env=False
        ) as service,
    ):
        form = await alice.get("/")
        assert form.status_code == 200 and 'name="identifier"' in form.text, form.text

        invalid = await alice.post("/sign-in", data={"identifier": "not a number"})
        assert invalid.status_code == 422 and 'name="identifier"' in invalid.text

        sent = await alice.post("/sign-in", data={"identifier": KNOWN_AS_TYPED})
        assert sent.status_code == 200 and sent.url.path == "/sign-in/code", sent.text
        assert KNOWN in sent.text and 'name="code"' in sent.text
        assert keys.test not in sent.text

        (body,) = await sandbox_messages(service, KNOWN, wait=10)
        match = CODE_RE.search(body)
        assert match, body
        code = match.group(1)

        wrong = await alice.post("/sign-in/code", data={"code": wrong_code(code)})
        assert wrong.status_code == 400 and "4 attempts left" in wrong.text, wrong.text
        assert wrong.elapsed.total_seconds() >= CHECK_FLOOR_S * 0.9, wrong.elapsed
        assert (await alice.get("/account")).url.path == "/"  # not signed in yet

        right = await alice.post("/sign-in/code", data={"code": code}, follow_redirects=False)
        assert right.status_code in (302, 303) and right.headers["location"] == "/account"
        cookies = [
            v for k, v in right.headers.multi_items() if k == "set-cookie" and "session=" in v
        ]
        assert len(cookies) == 1 and cookies[0].startswith("session="), right.headers
        attributes = cookies[0].lower()
        assert "httponly" in attributes and "samesite=lax" in attributes, cookies
        account = await alice.get("/account")
        assert account.status_code == 200 and f"Signed in as {KNOWN}" in account.text
        assert (await alice.get("/")).url.path == "/account"

        # The service's own delivery of the approval reached the example and verified.
        await example.wait_for_log("verification.approved")

        # An unknown user sees the same pages, with the same status and timing shape.
        maybe = await stranger.post("/sign-in", data={"identifier": unknown.upper()})
        assert (maybe.status_code, maybe.url.path) == (sent.status_code, sent.url.path)
        assert neutral(maybe.text, unknown) == neutral(sent.text, KNOWN)
        refused = await stranger.post("/sign-in/code", data={"code": wrong_code(code)})
        assert refused.status_code == wrong.status_code
        assert neutral(refused.text, unknown) == neutral(wrong.text, KNOWN)
        assert refused.elapsed.total_seconds() >= CHECK_FLOOR_S * 0.9, refused.elapsed
        assert (await stranger.get("/account")).url.path == "/"
        assert await sandbox_messages(service, unknown, wait=0.5) == []  # no code was sent

        # The code is used up; the session ends on sign-out.
        again = await alice.post("/sign-in/code", data={"code": code})
        assert again.status_code == 400 and "no longer be used" in again.text
        signed_out = await alice.post("/sign-out")
        assert signed_out.url.path == "/" and 'name="identifier"' in signed_out.text
        assert (await alice.get("/account")).url.path == "/"


def _event(verification_id: str) -> bytes:
    return json.dumps(
        {
            "type": "verification.approved",
            "timestamp": datetime.now(UTC).isoformat(),
            "data": {
                "id": verification_id,
                "application_id": "default",
                "mode": "test",
                "status": "approved",
                "channels": ["sms"],
                "to": "+1500*****06",
            },
        }
    ).encode()


def _headers(secret: str, msg_id: str, body: bytes, at: datetime) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body.decode()),
    }


async def webhooks(example: Example, secret: str) -> None:
    """A signed event is accepted once per id; tampered, stale or foreign ones are refused."""
    msg_id = f"msg_{uuid.uuid4().hex}"
    verification_id = f"ver_{uuid.uuid4().hex[:26]}"
    body = _event(verification_id)
    now = datetime.now(UTC)
    headers = _headers(secret, msg_id, body, now)
    tampered = body.replace(b'"approved"', b'"canceled"', 1)
    assert tampered != body
    async with httpx.AsyncClient(base_url=example.url, trust_env=False) as sender:

        async def post(content: bytes, sent: Mapping[str, str]) -> int:
            response = await sender.post("/webhooks/otp", content=content, headers=dict(sent))
            return response.status_code

        assert await post(body, headers) == 204
        assert await post(body, headers) == 204  # a retry of the same message
        refusals = {
            "tampered body": await post(tampered, headers),
            "signature of another secret": await post(
                body, _headers(new_secret(), msg_id, body, now)
            ),
            "stale timestamp": await post(
                body, _headers(secret, msg_id, body, now - timedelta(minutes=10))
            ),
            "no signature": await post(
                body, {k: v for k, v in headers.items() if k != "webhook-signature"}
            ),
        }
    assert all(status in (400, 401) for status in refusals.values()), refusals
    output = await example.wait_for_log(f"verification.approved {verification_id}")
    assert output.count(msg_id) == 1, output  # handled once, not on the retry


# An example's launcher: (port, environment, log file) -> the running example.
Launch = Callable[[int, Mapping[str, str], Path], AbstractAsyncContextManager[Example]]


async def sign_in_with_the_services_webhook(
    launch: Launch, service_url: str, keys: Keys, tmp_path: Path
) -> None:
    """The example signs a known user in with a code and verifies the service's webhook."""
    port = free_port()
    secret = await register_endpoint(service_url, keys, f"http://127.0.0.1:{port}/webhooks/otp")
    env = {
        "OTP_URL": service_url,
        "OTP_API_KEY": keys.test,
        "OTP_WEBHOOK_SECRET": secret,
        "APP_USERS": f"{KNOWN},someone@example.com",
    }
    async with launch(port, env, tmp_path / "example.log") as example:
        await sign_in(example, service_url, keys)
        assert keys.test not in example.log_text()


async def webhook_signatures(launch: Launch, tmp_path: Path) -> None:
    """The example accepts well-signed events once and refuses every bad signature."""
    secret = new_secret()
    env = {
        "OTP_URL": "http://127.0.0.1:9",  # never called: only webhooks are sent here
        "OTP_API_KEY": "otp_test_unused",
        "OTP_WEBHOOK_SECRET": secret,
    }
    async with launch(free_port(), env, tmp_path / "example.log") as example:
        await webhooks(example, secret)
