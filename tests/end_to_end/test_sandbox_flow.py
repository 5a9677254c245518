"""End to end over a real socket: uvicorn + the app + the real dev server + a real worker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from otp.settings import Settings
from otp.store import Store
from tests.conftest import real_worker
from tests.helpers.api import Keys, read_code, wrong_code
from tests.helpers.serving import served


@pytest.fixture
async def base_url(
    api_settings: Settings, dev_env: WorkflowEnvironment, store: Store
) -> AsyncIterator[str]:
    """Serve `create_app(settings)` with uvicorn on a free 127.0.0.1 port.

    Nothing is injected: the lifespan connects its own Temporal client to the dev server
    and opens the store at `settings.store_url` (the file the worker's store writes to).
    """
    settings = api_settings.model_copy(
        update={"temporal_address": dev_env.client.service_client.config.target_host}
    )
    assert settings.store_url.endswith(str(store.url).rsplit("/", 1)[-1])
    async with served(create_app(settings)) as url:
        yield url


async def test_start_read_inbox_wrong_then_right_code_then_recheck(
    base_url: str,
    api_settings: Settings,
    dev_env: WorkflowEnvironment,
    store: Store,
    keys: Keys,
) -> None:
    async with (
        real_worker(dev_env.client, api_settings, store),
        httpx.AsyncClient(base_url=base_url, headers=keys.test_headers, timeout=20) as http,
    ):
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")  # the lifespan's own client and store answer
        assert ready.status_code == 200, ready.text

        created = await http.post(
            "/v1/verifications",
            json={"to": "+1 415 555 0123", "brand": "Acme", "client_ref": "signup-1"},
        )
        assert created.status_code == 201, created.text
        body = created.json()
        vid = body["id"]
        assert created.headers["location"] == f"/v1/verifications/{vid}"
        assert body["status"] == "pending"
        assert body["to"] == "+1********23"  # normalised to E.164, then masked
        assert body["channels"] == [{"channel": "sms", "to": "+1********23", "timeout_s": 60}]
        assert body["attempts_remaining"] == 5
        assert body["mode"] == "test"
        assert body["client_ref"] == "signup-1"

        assert created.headers["cache-control"] == "no-store"
        assert created.headers["x-request-id"]

        code = await read_code(http, keys, vid)
        assert len(code) == 6

        by_phone = await http.get("/v1/sandbox/messages", params={"to": "+14155550123"})
        assert by_phone.status_code == 200
        assert [m["verification_id"] for m in by_phone.json()["messages"]] == [vid]
        message = by_phone.json()["messages"][0]
        assert message["channel"] == "sms"
        assert message["to"] == "+14155550123"
        assert "Acme" in message["body"]

        wrong = await http.post(f"/v1/verifications/{vid}/check", json={"code": wrong_code(code)})
        assert wrong.status_code == 200, wrong.text
        assert wrong.json() == {
            "id": vid,
            "status": "pending",
            "valid": False,
            "attempts_remaining": 4,
        }

        # Spaces and dashes are ignored, as users type them.
        typed = f"{code[:3]} - {code[3:]}"
        right = await http.post(f"/v1/verifications/{vid}/check", json={"code": typed})
        assert right.status_code == 200, right.text
        assert right.json() == {
            "id": vid,
            "status": "approved",
            "valid": True,
            "attempts_remaining": 3,
        }

        again = await http.post(f"/v1/verifications/{vid}/check", json={"code": code})
        assert again.status_code == 409, again.text
        assert again.headers["content-type"] == "application/problem+json"
        problem = again.json()
        assert problem["status_of_verification"] == "approved"
        assert problem["type"] == "urn:otp:problem:verification-finished"
        assert problem["instance"] == f"/v1/verifications/{vid}/check"
        assert code not in again.text

        got = await http.get(f"/v1/verifications/{vid}")
        assert got.status_code == 200, got.text
        state = got.json()
        assert state["status"] == "approved"
        assert state["reason"]
        assert state["attempts_used"] == 2
        assert state["attempts_remaining"] == 3
        assert state["finished_at"] is not None
        assert state["to"] == "+1********23"
        assert [(d["channel"], d["status"], d["kind"]) for d in state["deliveries"]] == [
            ("sms", "delivered", "step")
        ]
        assert "+14155550123" not in got.text

        # The workflow is durably closed with that result.
        result = await dev_env.client.get_workflow_handle(vid).describe()
        assert result.status is not None and result.status.name == "COMPLETED"
