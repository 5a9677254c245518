"""A resend over a send limit answers 429 and keeps the verification and its code.

The real app and worker on the time-skipping server (the resend cooldown is skipped).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from api.services.verification_workflows import Timeouts
from otp.domain import Mode
from otp.risk.policy import Rate, RiskSettings
from otp.settings import Settings
from otp.store import Store
from otp.store.applications import create_api_key, create_application
from tests.conftest import real_worker
from tests.helpers.api import Keys, code_in, read_messages

TO = "+14155550181"


@pytest.fixture
async def ts_http(
    api_settings: Settings, ts_env: WorkflowEnvironment, store: Store
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(api_settings, client=ts_env.client, store=store, timeouts=Timeouts())
    async with (
        real_worker(ts_env.client, api_settings, store),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api.test"
        ) as client,
    ):
        yield client


async def test_a_resend_over_the_destination_limit_is_429_and_the_code_still_approves(
    ts_http: httpx.AsyncClient, ts_env: WorkflowEnvironment, store: Store
) -> None:
    application = await create_application(
        store, name="Limited", risk=RiskSettings(per_destination=Rate(limit=1, window_s=600))
    )
    key = (await create_api_key(store, application_id=application.id, mode=Mode.TEST)).key
    headers = {"Authorization": f"Bearer {key}"}
    created = await ts_http.post("/v1/verifications", json={"to": TO}, headers=headers)
    assert created.status_code == 201, created.text
    vid = created.json()["id"]
    (message,) = await read_messages(ts_http, Keys(key, key, key), vid)
    code = code_in(message)
    before = (await ts_http.get(f"/v1/verifications/{vid}", headers=headers)).json()
    await ts_env.sleep(31)  # past the resend cooldown

    refused = await ts_http.post(f"/v1/verifications/{vid}/resend", headers=headers)
    assert refused.status_code == 429, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["type"] == "urn:otp:problem:rate-limited"
    assert problem["limit"] == "destination"
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 600 and problem["retry_after"] == retry_after
    assert TO not in refused.text and TO[1:] not in refused.text and code not in refused.text

    after = (await ts_http.get(f"/v1/verifications/{vid}", headers=headers)).json()
    assert after["status"] == "pending"
    assert after["sends"] == before["sends"] == 1
    assert after["next_resend_at"] == before["next_resend_at"]
    assert after["attempts_remaining"] == before["attempts_remaining"]
    await read_messages(ts_http, Keys(key, key, key), vid)  # still one message

    checked = await ts_http.post(
        f"/v1/verifications/{vid}/check", json={"code": code}, headers=headers
    )
    assert checked.status_code == 200, checked.text
    assert checked.json()["status"] == "approved"
