"""Live keys plan the channels that have a provider; each step carries its failover order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from api.services.verification_workflows import Timeouts
from otp.domain import VerificationInput
from otp.settings import Secrets, Settings
from otp.store import Store
from tests.helpers.api import Keys, make_settings


@pytest.fixture
async def live_http(
    data_dir: Path,
    task_queue: str,
    secrets: Secrets,
    keys: Keys,
    dev_env: WorkflowEnvironment,
    store: Store,
) -> AsyncIterator[tuple[httpx.AsyncClient, Settings]]:
    settings = make_settings(data_dir, task_queue, secrets, keys).model_copy(
        update={
            "twilio_account_sid": "AC" + "0" * 32,
            "twilio_auth_token": SecretStr("token"),
            "twilio_sms_from": "+15005550006",
            "twilio_voice_from": "+15005550006",
            "http_gateway_url": "http://127.0.0.1:9/sms",
            "sms_providers": "twilio,http_gateway",
            "webotp_domain": "example.com",
            "provider_max_attempts": 2,
        }
    )
    app = create_app(settings, client=dev_env.client, store=store, timeouts=Timeouts())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api.test"
    ) as client:
        yield client, settings


async def started_input(dev_env: WorkflowEnvironment, verification_id: str) -> VerificationInput:
    handle = dev_env.client.get_workflow_handle(verification_id)
    async for event in handle.fetch_history_events():
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        (decoded,) = await dev_env.client.data_converter.decode(payloads, [VerificationInput])
        assert isinstance(decoded, VerificationInput)
        return decoded
    raise AssertionError("no start event")


async def test_live_steps_carry_the_configured_providers_in_order(
    live_http: tuple[httpx.AsyncClient, Settings], keys: Keys, dev_env: WorkflowEnvironment
) -> None:
    http, _ = live_http
    r = await http.post(
        "/v1/verifications",
        headers=keys.live_headers,
        json={
            "to": "+14155552671",
            "channels": [
                {"channel": "sms"},
                {"channel": "voice"},
                {"channel": "email", "to": "a@example.com"},
            ],
            "app_hash": "FA+9qCX9VSu",
        },
    )
    assert r.status_code == 201, r.text
    input = await started_input(dev_env, r.json()["id"])
    assert [s.providers for s in input.channels] == [
        ["twilio", "http_gateway"],
        ["twilio"],
        ["smtp"],
    ]
    assert (input.web_domain, input.app_hash, input.provider_max_attempts) == (
        "example.com",
        "FA+9qCX9VSu",
        2,
    )
    await dev_env.client.get_workflow_handle(r.json()["id"]).terminate()


async def test_live_channel_without_a_provider_is_refused(
    live_http: tuple[httpx.AsyncClient, Settings], keys: Keys
) -> None:
    http, _ = live_http
    r = await http.post(
        "/v1/verifications",
        headers=keys.live_headers,
        json={"to": "+14155552671", "channels": [{"channel": "whatsapp"}]},
    )
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    (error,) = r.json()["errors"]
    assert error["pointer"] == "#/channels/0/channel"
    assert "email, sms, voice" in error["detail"]


async def test_test_mode_steps_use_the_sandbox_and_a_bad_app_hash_is_refused(
    live_http: tuple[httpx.AsyncClient, Settings], keys: Keys, dev_env: WorkflowEnvironment
) -> None:
    http, _ = live_http
    bad = await http.post(
        "/v1/verifications",
        headers=keys.test_headers,
        json={"to": "+14155552671", "app_hash": "short"},
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["pointer"] == "#/app_hash"
    ok = await http.post(
        "/v1/verifications",
        headers=keys.test_headers,
        json={"to": "+14155552671", "channels": [{"channel": "whatsapp"}]},
    )
    assert ok.status_code == 201
    input = await started_input(dev_env, ok.json()["id"])
    assert input.channels[0].providers == []  # test mode: the sandbox
    await dev_env.client.get_workflow_handle(ok.json()["id"]).terminate()
