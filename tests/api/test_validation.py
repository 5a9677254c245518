"""Invalid requests: 422 problems pointing at the field, and no workflow started."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from otp.settings import Settings
from otp.store import Store
from tests.helpers.api import Keys


async def _count_started(env: WorkflowEnvironment, task_queue: str, at_least: int) -> int:
    """Workflows started on this test's queue, once visibility shows at least `at_least`."""
    query = f"TaskQueue = '{task_queue}'"
    for _ in range(100):
        count = (await env.client.count_workflows(query)).count
        if count >= at_least:
            return count
        await asyncio.sleep(0.05)
    return (await env.client.count_workflows(query)).count


def _assert_problem(response: httpx.Response, pointer: str, *, contains: str = "") -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:otp:problem:invalid-request"
    assert problem["status"] == 422
    assert problem["instance"] == "/v1/verifications"
    pointers = [e.get("pointer") for e in problem["errors"]]
    assert pointer in pointers, problem
    if contains:
        assert any(contains in e["detail"] for e in problem["errors"]), problem


INVALID_BODIES: list[tuple[str, dict[str, Any], str, str]] = [
    ("bad phone", {"to": "+1 555"}, "#/to", "phone"),
    ("national phone", {"to": "415 555 0123"}, "#/to", "international"),
    ("bad email", {"to": "jane@@example"}, "#/to", "email"),
    (
        "bad step phone",
        {
            "to": "+14155550123",
            "channels": [{"channel": "sms"}, {"channel": "voice", "to": "+999"}],
        },
        "#/channels/1/to",
        "voice",
    ),
    (
        "email step with a phone number",
        {"to": "+14155550123", "channels": [{"channel": "email"}]},
        "#/to",
        "email",
    ),
    (
        "timeout too short",
        {"to": "+14155550123", "channels": [{"channel": "sms", "timeout_s": 4}]},
        "#/channels/0/timeout_s",
        "",
    ),
    (
        "timeout too long",
        {"to": "+14155550123", "channels": [{"channel": "sms", "timeout_s": 3601}]},
        "#/channels/0/timeout_s",
        "",
    ),
    (
        "too many steps",
        {"to": "+14155550123", "channels": [{"channel": "sms"}] * 6},
        "#/channels",
        "",
    ),
    ("no steps", {"to": "+14155550123", "channels": []}, "#/channels", ""),
    (
        "unknown channel",
        {"to": "+14155550123", "channels": [{"channel": "pigeon"}]},
        "#/channels/0/channel",
        "",
    ),
    ("code too long", {"to": "+14155550123", "code_length": 11}, "#/code_length", ""),
    ("ttl too short", {"to": "+14155550123", "ttl_s": 59}, "#/ttl_s", ""),
    ("too many attempts", {"to": "+14155550123", "max_attempts": 11}, "#/max_attempts", ""),
    ("locale", {"to": "+14155550123", "locale": "english please"}, "#/locale", ""),
    ("brand", {"to": "+14155550123", "brand": "B" * 41}, "#/brand", ""),
    ("client_ref", {"to": "+14155550123", "client_ref": "r" * 129}, "#/client_ref", ""),
    ("unknown field", {"to": "+14155550123", "max_sends": 9}, "#/max_sends", ""),
    ("missing to", {"channels": [{"channel": "sms"}]}, "#/to", ""),
]


async def test_invalid_creates_are_422_problems_and_start_nothing(
    http: httpx.AsyncClient, keys: Keys, dev_env: WorkflowEnvironment, api_settings: Settings
) -> None:
    for name, body, pointer, contains in INVALID_BODIES:
        response = await http.post("/v1/verifications", json=body, headers=keys.test_headers)
        try:
            _assert_problem(response, pointer, contains=contains)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc

    live = await http.post(
        "/v1/verifications",
        json={
            "to": "jane@example.com",
            "channels": [{"channel": "email"}, {"channel": "sms", "to": "+14155550123"}],
        },
        headers=keys.live_headers,
    )
    _assert_problem(live, "#/channels/1/channel", contains="channel not available in live mode")

    not_json = await http.post(
        "/v1/verifications",
        content=b"{not json",
        headers={**keys.test_headers, "content-type": "application/json"},
    )
    assert not_json.status_code == 422
    assert not_json.headers["content-type"] == "application/problem+json"

    bad_key = await http.post(
        "/v1/verifications",
        json={"to": "+14155550123"},
        headers={**keys.test_headers, "Idempotency-Key": "x" * 256},
    )
    assert bad_key.status_code == 422
    assert bad_key.json()["errors"][0]["parameter"] == "Idempotency-Key"

    # One valid start: once visibility shows it, it is the only workflow on this queue.
    ok = await http.post(
        "/v1/verifications", json={"to": "jane@example.com"}, headers=keys.live_headers
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["channels"][0]["channel"] == "email"
    assert ok.json()["mode"] == "live"
    assert await _count_started(dev_env, api_settings.task_queue, at_least=1) == 1


async def test_several_problems_are_reported_together(http: httpx.AsyncClient, keys: Keys) -> None:
    response = await http.post(
        "/v1/verifications",
        json={
            "to": "nobody",
            "channels": [{"channel": "sms", "to": "+1"}, {"channel": "email", "to": "x@"}],
        },
        headers=keys.test_headers,
    )
    assert response.status_code == 422
    pointers = {e["pointer"] for e in response.json()["errors"]}
    assert pointers == {"#/to", "#/channels/0/to", "#/channels/1/to"}


@pytest.mark.parametrize("code", ["12", "12345678901", "12#456", "", "١٢٣٤٥٦"])
async def test_malformed_codes_are_422_and_never_echoed(
    http: httpx.AsyncClient, keys: Keys, code: str
) -> None:
    response = await http.post(
        "/v1/verifications/ver_abcdefghijklmnopqrstuvwxyz/check",
        json={"code": code},
        headers=keys.test_headers,
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["errors"][0]["pointer"] == "#/code"
    if code:  # the request id is random hex: leave it out of the comparison
        echoed = {k: v for k, v in problem.items() if k != "request_id"}
        assert code not in str(echoed)
    assert "input" not in problem["errors"][0]


async def test_sandbox_query_is_validated(http: httpx.AsyncClient, keys: Keys) -> None:
    bad_to = await http.get(
        "/v1/sandbox/messages", params={"to": "555-0123"}, headers=keys.test_headers
    )
    assert bad_to.status_code == 422
    assert bad_to.json()["errors"][0] == {
        "in": "query",
        "parameter": "to",
        "detail": bad_to.json()["errors"][0]["detail"],
        "type": "invalid_destination",
    }
    bad_limit = await http.get(
        "/v1/sandbox/messages", params={"limit": 0}, headers=keys.test_headers
    )
    assert bad_limit.status_code == 422
    assert bad_limit.json()["errors"][0]["parameter"] == "limit"


class _ExplodingClient:
    """Stands in for the Temporal client where a route must not call Temporal at all."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"Temporal was called: client.{name}")


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", ""),
        ("POST", "/check"),
        ("POST", "/resend"),
        ("POST", "/next-channel"),
        ("POST", "/cancel"),
    ],
)
async def test_malformed_ids_are_404_without_calling_temporal(
    api_settings: Settings, store: Store, keys: Keys, method: str, suffix: str
) -> None:
    app = create_app(api_settings, client=_ExplodingClient(), store=store)  # type: ignore[arg-type]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api.test"
    ) as http:
        for bad in ("nope", "ver_SHOUTING0123456789ABCDEFG", "ver_short", "ver_" + "a" * 65):
            response = await http.request(
                method,
                f"/v1/verifications/{bad}{suffix}",
                json={"code": "123456"} if suffix == "/check" else None,
                headers=keys.test_headers,
            )
            assert response.status_code == 404, response.text
            assert response.json()["type"] == "urn:otp:problem:verification-not-found"


async def test_unknown_routes_and_methods_are_problems(http: httpx.AsyncClient, keys: Keys) -> None:
    missing = await http.get("/v1/nothing-here", headers=keys.test_headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["instance"] == "/v1/nothing-here"
    wrong_method = await http.delete("/v1/verifications", headers=keys.test_headers)
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"] == "application/problem+json"
    assert "POST" in wrong_method.headers["allow"]


def test_create_app_needs_no_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTP_DATA_DIR", str(tmp_path))
    from otp.settings import get_settings

    get_settings.cache_clear()
    try:
        app = create_app()
    finally:
        get_settings.cache_clear()
    assert app.state.settings.data_dir == tmp_path
    assert app.state.client is None  # connected by the lifespan
