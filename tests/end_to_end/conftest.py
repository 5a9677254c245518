"""The whole live-mode stack over real sockets, per test.

- the real Temporal dev server (`dev_env`) and a worker built by `build_activities` /
  `build_worker` (`activities.wiring`) from the same `Settings` as the API;
- the API (`create_app`) served by uvicorn on a free port, which is also `OTP_PUBLIC_URL`,
  so receipts come back through the webhook endpoints and their signature checks;
- fake Twilio, Meta and HTTP gateway servers and an aiosmtpd server (tests/helpers/provider_fakes.py).

Also the proofs' fixture `api`: the app served by uvicorn with a real worker on the
test's own queue and data directory, and an HTTP client holding the test-mode key.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.wiring import build_activities, build_worker
from api.main import create_app
from otp.applications.keys import hash_api_key, new_api_key
from otp.domain import Mode, VerificationState
from otp.settings import Secrets, Settings
from otp.store import Store
from tests.conftest import TEST_SECRETS, real_worker
from tests.helpers.api import Keys, make_settings
from tests.helpers.provider_fakes import GatewayFake, MetaFake, SmtpServer, TwilioFake
from tests.helpers.serving import served
from workflows.verification import VerificationWorkflow

TWILIO_ACCOUNT_SID = "AC" + "5ef8" * 8
TWILIO_AUTH_TOKEN = "twilio-e2e-auth-token-7f3a9c"
TWILIO_SMS_FROM = "+15005550006"
TWILIO_VOICE_FROM = "+15005550007"
META_VERSION = "v23.0"
META_PHONE_NUMBER_ID = "106540352242922"
META_ACCESS_TOKEN = "EAAe2e-meta-access-token"
META_APP_SECRET = "meta-e2e-app-secret-4d1b"
META_VERIFY_TOKEN = "meta-e2e-verify-token"
GATEWAY_AUTH_HEADER = "X-Api-Key"
GATEWAY_AUTH_VALUE = "gw-e2e-key-91c2"
SMTP_FROM = "Acme <no-reply@acme.test>"
WEBOTP_DOMAIN = "app.acme.test"

Handle = WorkflowHandle[VerificationWorkflow, VerificationState]


@pytest.fixture(scope="session")
def live_key() -> str:
    return new_api_key(Mode.LIVE)


@pytest.fixture
async def twilio() -> AsyncIterator[TwilioFake]:
    async with TwilioFake(TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN) as fake:
        yield fake


@pytest.fixture
async def meta() -> AsyncIterator[MetaFake]:
    fake = MetaFake(
        api_version=META_VERSION,
        phone_number_id=META_PHONE_NUMBER_ID,
        access_token=META_ACCESS_TOKEN,
        app_secret=META_APP_SECRET,
    )
    async with fake:
        yield fake


@pytest.fixture
async def gateway() -> AsyncIterator[GatewayFake]:
    async with GatewayFake(GATEWAY_AUTH_HEADER, GATEWAY_AUTH_VALUE) as fake:
        yield fake


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Stack:
    settings: Settings
    base_url: str
    api: httpx.AsyncClient  # authenticated with the live key
    client: Client
    twilio: TwilioFake
    meta: MetaFake
    gateway: GatewayFake
    smtp: SmtpServer

    async def create(self, body: dict[str, Any]) -> str:
        response = await self.api.post("/v1/verifications", json=body)
        assert response.status_code == 201, response.text
        vid: str = response.json()["id"]
        return vid

    def handle(self, vid: str) -> Handle:
        return self.client.get_workflow_handle_for(VerificationWorkflow.run, vid)

    async def run_id(self, vid: str) -> str:
        run_id = (await self.handle(vid).describe()).run_id
        assert run_id
        return run_id

    async def wait_state(
        self,
        vid: str,
        predicate: Callable[[VerificationState], bool],
        *,
        within: float = 5.0,
    ) -> tuple[VerificationState, float]:
        """Poll the `state` query until `predicate` holds; the state and when it was seen."""
        handle = self.handle(vid)
        deadline = time.monotonic() + within
        while True:
            state = await handle.query(VerificationWorkflow.state)
            seen = time.monotonic()
            if predicate(state):
                return state, seen
            assert seen < deadline, f"condition not met within {within}s: {state}"
            await asyncio.sleep(0.005)


def live_settings(
    *,
    data_dir: Any,
    task_queue: str,
    live_key: str,
    public_url: str,
    twilio: TwilioFake,
    meta: MetaFake,
    gateway: GatewayFake,
    smtp: SmtpServer,
    **overrides: Any,
) -> Settings:
    (key_id, key), *_ = TEST_SECRETS.codec_keys.items()
    values: dict[str, Any] = {
        "env": "dev",
        "data_dir": data_dir,
        "task_queue": task_queue,
        "api_keys": SecretStr(f"sha256:live:{hash_api_key(live_key)}"),
        "code_secret": SecretStr(TEST_SECRETS.code_secret.decode()),
        "codec_keys": SecretStr(f"{key_id}:{base64.b64encode(key).decode()}"),
        "public_url": public_url,
        "webotp_domain": WEBOTP_DOMAIN,
        "sms_providers": "twilio",
        "whatsapp_providers": "meta_whatsapp",
        "voice_providers": "twilio",
        "email_providers": "smtp",
        "provider_max_attempts": 3,
        "twilio_account_sid": TWILIO_ACCOUNT_SID,
        "twilio_auth_token": SecretStr(TWILIO_AUTH_TOKEN),
        "twilio_sms_from": TWILIO_SMS_FROM,
        "twilio_voice_from": TWILIO_VOICE_FROM,
        "twilio_base_url": twilio.url,
        "meta_access_token": SecretStr(META_ACCESS_TOKEN),
        "meta_phone_number_id": META_PHONE_NUMBER_ID,
        "meta_app_secret": SecretStr(META_APP_SECRET),
        "meta_verify_token": SecretStr(META_VERIFY_TOKEN),
        "meta_api_version": META_VERSION,
        "meta_base_url": meta.url,
        "http_gateway_url": f"{gateway.url}/v1/sms",
        "http_gateway_auth_header": GATEWAY_AUTH_HEADER,
        "http_gateway_auth_value": SecretStr(GATEWAY_AUTH_VALUE),
        "http_gateway_message_id_path": "message.id",
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp.port,
        "smtp_from": SMTP_FROM,
        "smtp_timeout_s": 5.0,
    }
    values.update(overrides)
    return Settings(**values)


StartStack = Callable[..., Awaitable[Stack]]


@pytest.fixture
async def start_stack(
    dev_env: WorkflowEnvironment,
    store: Store,
    data_dir: Any,
    task_queue: str,
    live_key: str,
    twilio: TwilioFake,
    meta: MetaFake,
    gateway: GatewayFake,
    smtp: SmtpServer,
) -> AsyncIterator[StartStack]:
    """`await start_stack(**settings_overrides)`: the API and a worker with those settings."""
    async with AsyncExitStack() as exits:

        async def start(**overrides: Any) -> Stack:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            exits.callback(sock.close)
            base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            settings = live_settings(
                data_dir=data_dir,
                task_queue=task_queue,
                live_key=live_key,
                public_url=base_url,
                twilio=twilio,
                meta=meta,
                gateway=gateway,
                smtp=smtp,
                **overrides,
            )

            app = create_app(settings, client=dev_env.client, store=store, secrets=TEST_SECRETS)
            server = uvicorn.Server(
                uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
            )
            task = asyncio.create_task(server.serve(sockets=[sock]))

            async def stop_api() -> None:
                server.should_exit = True
                await asyncio.wait_for(task, 10)

            exits.push_async_callback(stop_api)
            deadline = time.monotonic() + 10
            while not server.started:
                if task.done():
                    task.result()  # surface the startup error
                assert time.monotonic() < deadline, "uvicorn did not start"
                await asyncio.sleep(0.01)

            # The worker as `python worker.py` builds it: one pool for every provider.
            provider_http = await exits.enter_async_context(
                httpx.AsyncClient(follow_redirects=False, timeout=httpx.Timeout(15.0, connect=5.0))
            )
            activities = build_activities(settings, TEST_SECRETS, store, http=provider_http)
            await exits.enter_async_context(build_worker(dev_env.client, settings, activities))

            api = await exits.enter_async_context(
                httpx.AsyncClient(
                    base_url=base_url,
                    headers={"Authorization": f"Bearer {live_key}"},
                    timeout=20,
                )
            )
            return Stack(
                settings=settings,
                base_url=base_url,
                api=api,
                client=dev_env.client,
                twilio=twilio,
                meta=meta,
                gateway=gateway,
                smtp=smtp,
            )

        yield start


# Updates beyond 10 in flight per workflow are delayed by the server (~1 s each retry):
# wait long enough on the client side and never queue requests behind a pool limit.
HTTP_TIMEOUT_S = 60.0
HTTP_LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=200)


@dataclass(frozen=True)
class Api:
    http: httpx.AsyncClient  # authenticated with the test-mode key
    keys: Keys


@pytest.fixture(scope="session")
def proof_keys() -> Keys:
    return Keys(
        test=new_api_key(Mode.TEST),
        live=new_api_key(Mode.LIVE),
        test_hashed=new_api_key(Mode.TEST),
    )


@pytest.fixture
def proof_settings(data_dir: Path, task_queue: str, secrets: Secrets, proof_keys: Keys) -> Settings:
    return make_settings(data_dir, task_queue, secrets, proof_keys)


@pytest.fixture
async def api(
    proof_settings: Settings, proof_keys: Keys, dev_env: WorkflowEnvironment, store: Store
) -> AsyncIterator[Api]:
    """uvicorn + the app on a free port, a real worker on the test's queue, an HTTP client."""
    settings = proof_settings.model_copy(
        update={"temporal_address": dev_env.client.service_client.config.target_host}
    )
    async with (
        served(create_app(settings)) as url,
        real_worker(dev_env.client, settings, store),
        httpx.AsyncClient(
            base_url=url,
            headers=proof_keys.test_headers,
            timeout=HTTP_TIMEOUT_S,
            limits=HTTP_LIMITS,
        ) as http,
    ):
        yield Api(http=http, keys=proof_keys)
