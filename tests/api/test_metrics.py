"""Prometheus metrics, scraped and parsed: the API's /metrics and the worker's endpoint."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from otp.observability import metrics
from otp.settings import Settings
from otp.store import Store
from otp.temporal import connect
from tests.conftest import TEST_SECRETS, real_worker
from tests.helpers.api import Keys, read_code, wrong_code

PHONE = "+14155550123"
TWILIO_TOKEN = "twilio-test-auth-token-0123456789"
CHECK_ROUTE = "/v1/verifications/{verification_id}/check"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition by (name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of `name` over the samples whose labels include `labels` (0 if none)."""
    wanted = set(labels.items())
    return sum(v for (n, lbls), v in samples.items() if n == name and wanted <= lbls)


def twilio_signature(url: str, params: dict[str, str]) -> str:
    data = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(TWILIO_TOKEN.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


@pytest.fixture
def metrics_settings(api_settings: Settings) -> Settings:
    return api_settings.model_copy(update={"twilio_auth_token": SecretStr(TWILIO_TOKEN)})


@pytest.fixture
async def api(
    metrics_settings: Settings, dev_env: WorkflowEnvironment, store: Store
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(metrics_settings, client=dev_env.client, store=store)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api.test"
    ) as client:
        yield client


async def scrape(http: httpx.AsyncClient, **headers: str) -> Samples:
    response = await http.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


async def start(http: httpx.AsyncClient, keys: Keys) -> str:
    response = await http.post(
        "/v1/verifications",
        headers=keys.test_headers,
        json={"to": PHONE, "channels": [{"channel": "sms", "timeout_s": 300}]},
    )
    assert response.status_code == 201, response.text
    verification_id: str = response.json()["id"]
    return verification_id


async def check(http: httpx.AsyncClient, keys: Keys, verification_id: str, code: str) -> bool:
    response = await http.post(
        f"/v1/verifications/{verification_id}/check",
        headers=keys.test_headers,
        json={"code": code},
    )
    assert response.status_code == 200, response.text
    valid: bool = response.json()["valid"]
    return valid


async def test_api_counts_starts_checks_receipts_and_requests_by_route(
    api: httpx.AsyncClient, keys: Keys, worker: None, metrics_settings: Settings
) -> None:
    before = await scrape(api)
    verification_id = await start(api, keys)
    code = await read_code(api, keys, verification_id)
    assert not await check(api, keys, verification_id, wrong_code(code))
    assert await check(api, keys, verification_id, code)
    form = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered"}
    path = f"/v1/webhooks/twilio/status?ref={verification_id}:run:1"
    receipt = await api.post(
        path,
        data=form,
        headers={"X-Twilio-Signature": twilio_signature("http://api.test" + path, form)},
    )
    assert receipt.status_code == 204, receipt.text
    await api.get(f"/v1/verifications/{verification_id}", headers=keys.test_headers)
    await api.get("/no/such/route")

    response = await api.get("/metrics")
    after = parse(response.text)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("otp_verifications_started_total", channel="sms", country="US", mode="test") == 1
    assert delta("otp_checks_total", result="incorrect") == 1
    assert delta("otp_checks_total", result="approved") == 1
    assert delta("otp_checks_total", result="refused") == 0
    assert delta("otp_delivery_receipts_total", provider="twilio", status="delivered") == 1
    assert delta("otp_http_requests_total", method="POST", route=CHECK_ROUTE, status="200") == 2
    assert (
        delta(
            "otp_http_requests_total",
            method="POST",
            route="/v1/verifications",
            status="201",
        )
        == 1
    )
    assert (
        delta(
            "otp_http_requests_total",
            method="GET",
            route="/v1/verifications/{verification_id}",
            status="200",
        )
        == 1
    )
    assert delta("otp_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert delta("otp_http_request_duration_seconds_count", method="POST", route=CHECK_ROUTE) == 2
    # Routes are templates: no id, destination or code ever becomes a label value.
    for secret in (verification_id, PHONE, PHONE[1:], code, "/no/such/route"):
        assert secret not in response.text


async def test_metrics_token_guards_the_endpoint_and_it_stays_out_of_the_schema(
    metrics_settings: Settings, dev_env: WorkflowEnvironment, store: Store
) -> None:
    settings = metrics_settings.model_copy(
        update={"metrics_token": SecretStr("metrics-token-0123456789")}
    )
    app = create_app(settings, client=dev_env.client, store=store)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api.test"
    ) as http:
        refused = await http.get("/metrics")
        assert refused.status_code == 401
        assert refused.headers["content-type"].startswith("application/problem+json")
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        samples = await scrape(http, Authorization="Bearer metrics-token-0123456789")
        assert any(name == "otp_http_requests_total" for name, _ in samples)
        schema = (await http.get("/openapi.json")).json()
        assert "/metrics" not in schema["paths"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_worker_serves_its_metrics_and_the_sdks_on_one_endpoint(
    api: httpx.AsyncClient,
    keys: Keys,
    metrics_settings: Settings,
    dev_env: WorkflowEnvironment,
    store: Store,
) -> None:
    # Built the way worker.serve builds it: the runtime from the setting, the client on it.
    address = f"127.0.0.1:{free_port()}"
    settings = metrics_settings.model_copy(
        update={
            "worker_metrics_address": address,
            "temporal_address": dev_env.client.service_client.config.target_host,
        }
    )
    runtime = metrics.worker_runtime(settings.worker_metrics_address)
    assert runtime is not None
    client = await connect(settings, TEST_SECRETS, runtime=runtime)
    async with real_worker(client, settings, store), httpx.AsyncClient() as scraper:
        verification_id = await start(api, keys)
        code = await read_code(api, keys, verification_id)
        assert await check(api, keys, verification_id, code)

        samples: Samples = {}
        text = ""
        for _ in range(200):
            text = (await scraper.get(f"http://{address}/metrics")).text
            samples = parse(text)
            if value(samples, "otp_verifications_finished_total", status="approved"):
                break
            await asyncio.sleep(0.05)

    assert (
        value(
            samples,
            "otp_verifications_finished_total",
            status="approved",
            channel="sms",
            country="US",
        )
        == 1
    )
    assert value(samples, "otp_sends_total", provider="sandbox", channel="sms", outcome="sent") == 1
    assert value(samples, "otp_sends_total", outcome="failed") == 0
    assert value(samples, "otp_time_to_verify_seconds_count", channel="sms") == 1
    assert 0 < value(samples, "otp_time_to_verify_seconds_sum", channel="sms") < 60
    assert value(samples, "otp_time_to_verify_seconds_bucket", channel="sms", le="+Inf") == 1
    assert value(samples, "otp_time_to_verify_seconds_bucket", channel="sms", le="60") == 1
    assert value(samples, "otp_time_to_deliver_seconds_count", channel="sms") == 1
    # The SDK's own metrics on the same endpoint.
    assert value(samples, "temporal_workflow_completed_total") >= 1
    assert value(samples, "temporal_activity_execution_latency_count") >= 1
    for secret in (verification_id, PHONE, PHONE[1:], code):
        assert secret not in text


def test_worker_endpoint_is_off_without_an_address() -> None:
    assert metrics.worker_runtime(None) is None
    assert metrics.worker_runtime("") is None
