"""Probes, the OpenAPI document and the access-log redaction."""

from __future__ import annotations

import logging
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from api.main import _ACCESS_FILTER, create_app
from otp.settings import Settings
from otp.store import Store


async def test_healthz_and_readyz(http: httpx.AsyncClient) -> None:
    health = await http.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    ready = await http.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ok", "checks": {"temporal": "ok", "store": "ok"}}


class _DownServiceClient:
    async def check_health(self, **_: Any) -> bool:
        raise ConnectionError("temporal is down")


class _DownClient:
    service_client = _DownServiceClient()


async def test_readyz_is_503_when_a_dependency_is_down(
    api_settings: Settings, dev_env: WorkflowEnvironment, store: Store, tmp_path: Any
) -> None:
    app = create_app(api_settings, client=_DownClient(), store=store)  # type: ignore[arg-type]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api.test"
    ) as http:
        assert (await http.get("/healthz")).status_code == 200  # liveness does not care
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.headers["content-type"] == "application/problem+json"
        assert "retry-after" in ready.headers
        assert ready.json()["checks"] == {"temporal": "unavailable", "store": "ok"}

    broken_store = Store(f"sqlite+aiosqlite:///{tmp_path}/missing-dir/none.db")
    app = create_app(api_settings, client=dev_env.client, store=broken_store)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api.test"
    ) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"temporal": "ok", "store": "unavailable"}
    await broken_store.close()


async def test_openapi_documents_every_route_and_problem(http: httpx.AsyncClient) -> None:
    response = await http.get("/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    operations = {(method.upper(), path) for path, item in doc["paths"].items() for method in item}
    assert operations == {
        ("POST", "/v1/verifications"),
        ("GET", "/v1/verifications/{verification_id}"),
        ("POST", "/v1/verifications/{verification_id}/check"),
        ("POST", "/v1/verifications/{verification_id}/resend"),
        ("POST", "/v1/verifications/{verification_id}/next-channel"),
        ("POST", "/v1/verifications/{verification_id}/cancel"),
        ("GET", "/v1/verifications"),
        ("GET", "/v1/verifications/{verification_id}/events"),
        ("GET", "/v1/analytics"),
        ("POST", "/codec/decode"),
        ("POST", "/codec/encode"),
        ("POST", "/v1/webhook-endpoints"),
        ("GET", "/v1/webhook-endpoints"),
        ("GET", "/v1/webhook-endpoints/{endpoint_id}"),
        ("PATCH", "/v1/webhook-endpoints/{endpoint_id}"),
        ("DELETE", "/v1/webhook-endpoints/{endpoint_id}"),
        ("GET", "/v1/webhook-endpoints/{endpoint_id}/secret"),
        ("POST", "/v1/webhook-endpoints/{endpoint_id}/secret/rotate"),
        ("POST", "/v1/webhook-endpoints/{endpoint_id}/test"),
        ("GET", "/v1/webhook-endpoints/{endpoint_id}/messages"),
        ("GET", "/v1/webhook-endpoints/{endpoint_id}/messages/{message_id}/attempts"),
        ("GET", "/v1/sandbox/messages"),
        ("POST", "/v1/admin/applications"),
        ("GET", "/v1/admin/applications"),
        ("GET", "/v1/admin/applications/{application_id}"),
        ("PATCH", "/v1/admin/applications/{application_id}"),
        ("POST", "/v1/admin/applications/{application_id}/keys"),
        ("GET", "/v1/admin/applications/{application_id}/keys"),
        ("POST", "/v1/admin/applications/{application_id}/keys/{key_id}/revoke"),
        ("GET", "/v1/admin/applications/{application_id}/risk-blocks"),
        ("POST", "/v1/admin/applications/{application_id}/risk-blocks"),
        ("POST", "/v1/admin/applications/{application_id}/risk-blocks/{block_id}/lift"),
        ("GET", "/v1/admin/applications/{application_id}/lockouts"),
        ("POST", "/v1/admin/applications/{application_id}/lockouts/unlock"),
        ("POST", "/v1/admin/applications/{application_id}/safe-list"),
        ("GET", "/v1/admin/applications/{application_id}/safe-list"),
        ("DELETE", "/v1/admin/applications/{application_id}/safe-list/{entry_id}"),
        ("GET", "/v1/admin/applications/{application_id}/sandbox-scenarios"),
        ("POST", "/v1/admin/applications/{application_id}/sandbox-scenarios"),
        ("DELETE", "/v1/admin/applications/{application_id}/sandbox-scenarios/{scenario_id}"),
        ("GET", "/v1/admin/applications/{application_id}/routing-rules"),
        ("POST", "/v1/admin/applications/{application_id}/routing-rules"),
        ("PUT", "/v1/admin/applications/{application_id}/routing-rules/{rule_id}"),
        ("DELETE", "/v1/admin/applications/{application_id}/routing-rules/{rule_id}"),
        ("GET", "/v1/admin/applications/{application_id}/routes/explain"),
        ("GET", "/v1/admin/applications/{application_id}/templates"),
        ("POST", "/v1/admin/applications/{application_id}/templates/preview"),
        ("PUT", "/v1/admin/applications/{application_id}/templates/{channel}/{locale}"),
        ("DELETE", "/v1/admin/applications/{application_id}/templates/{channel}/{locale}"),
        ("GET", "/v1/admin/applications/{application_id}/templates/{channel}/{locale}/versions"),
        ("GET", "/v1/admin/applications/{application_id}/alert-rules"),
        ("PUT", "/v1/admin/applications/{application_id}/alert-rules"),
        ("GET", "/v1/admin/applications/{application_id}/alerts"),
        ("GET", "/v1/admin/applications/{application_id}/alerts/{alert_id}"),
        ("GET", "/v1/admin/applications/{application_id}/prices"),
        ("GET", "/v1/admin/applications/{application_id}/prices/quote"),
        ("PUT", "/v1/admin/applications/{application_id}/prices/{provider}/{channel}/{country}"),
        (
            "DELETE",
            "/v1/admin/applications/{application_id}/prices/{provider}/{channel}/{country}",
        ),
        ("POST", "/v1/admin/applications/{application_id}/destinations/export"),
        ("POST", "/v1/admin/applications/{application_id}/destinations/erase"),
        ("POST", "/v1/webhooks/twilio/status"),
        ("GET", "/v1/webhooks/meta"),
        ("POST", "/v1/webhooks/meta"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("POST", "/v2/Services"),
        ("GET", "/v2/Services"),
        ("GET", "/v2/Services/{service_sid}"),
        ("POST", "/v2/Services/{service_sid}"),
        ("DELETE", "/v2/Services/{service_sid}"),
        ("POST", "/v2/Services/{service_sid}/Verifications"),
        ("GET", "/v2/Services/{service_sid}/Verifications/{sid}"),
        ("POST", "/v2/Services/{service_sid}/Verifications/{sid}"),
        ("POST", "/v2/Services/{service_sid}/VerificationCheck"),
        ("GET", "/v2/Attempts"),
        ("GET", "/v2/Attempts/Summary"),
        ("GET", "/v2/Attempts/{sid}"),
        ("GET", "/v1/admin/applications/{application_id}/provider-accounts"),
        ("GET", "/v1/admin/applications/{application_id}/provider-accounts/{provider}"),
        ("PUT", "/v1/admin/applications/{application_id}/provider-accounts/{provider}"),
        ("DELETE", "/v1/admin/applications/{application_id}/provider-accounts/{provider}"),
        ("POST", "/v1/admin/applications/{application_id}/provider-accounts/{provider}/test"),
    }
    check = doc["paths"]["/v1/verifications/{verification_id}/check"]["post"]
    assert check["responses"]["409"]["content"] == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    assert check["responses"]["422"]["content"] == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    assert doc["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["ApiKey"]["description"],
    }
    assert doc["paths"]["/v1/verifications"]["post"]["security"] == [{"ApiKey": []}]
    assert "security" not in doc["paths"]["/healthz"]["get"]
    create = doc["components"]["schemas"]["VerificationCreate"]
    assert create["properties"]["to"]["description"]
    assert create["additionalProperties"] is False
    docs = await http.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


def test_access_log_drops_query_strings() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/v1/sandbox/messages?to=%2B14155550123", "1.1", 200),
        None,
    )
    assert _ACCESS_FILTER.filter(record)
    assert "14155550123" not in record.getMessage()
    assert "/v1/sandbox/messages?[redacted]" in record.getMessage()
