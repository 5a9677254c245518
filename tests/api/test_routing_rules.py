"""Routing rules over HTTP: validation problems change nothing, conflicts, update, delete,
warnings from the country facts, explain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from api.services.verification_workflows import Timeouts
from otp.settings import Settings
from otp.store import Store
from otp.store.applications import ensure_default_application

ADMIN_TOKEN = "admin-token-for-the-routing-tests-0123"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
RULES = "/v1/admin/applications/default/routing-rules"
EXPLAIN = "/v1/admin/applications/default/routes/explain"


@pytest.fixture
async def http(
    api_settings: Settings, dev_env: WorkflowEnvironment, store: Store
) -> AsyncIterator[httpx.AsyncClient]:
    await ensure_default_application(store)
    settings = api_settings.model_copy(update={"admin_token": SecretStr(ADMIN_TOKEN)})
    app = create_app(settings, client=dev_env.client, store=store, timeouts=Timeouts())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api.test", headers=ADMIN
    ) as client:
        yield client


async def rules(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await http.get(RULES)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["rules"]
    return found


async def test_admin_token_is_needed(http: httpx.AsyncClient) -> None:
    for method, path in (("GET", RULES), ("POST", RULES), ("GET", EXPLAIN + "?to=+14155550123")):
        response = await http.request(method, path, json={}, headers={"Authorization": "Bearer x"})
        assert response.status_code == 401, response.text


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"channel": "sms", "country": "XX"}, "#/country"),
        ({"channel": "sms", "prefix": "+44"}, "#/prefix"),
        ({"channel": "sms", "country": "GB", "prefix": "+33"}, "#/prefix"),
        ({"channel": "sms", "country": "GB", "prefix": "44"}, "#/prefix"),
        ({"channel": "sms", "providers": ["meta_whatsapp"]}, "#/providers"),
        ({"channel": "sms", "providers": ["nope"]}, "#/providers"),
        ({"channel": "sms", "sender": {"type": "whatsapp_sender", "value": "+1415"}}, "#/sender"),
        ({"channel": "sms", "sender": {"type": "alphanumeric", "value": "123"}}, "#/sender"),
        ({"channel": "email", "country": "GB"}, "#/country"),
    ],
)
async def test_bad_rules_are_refused_and_nothing_changes(
    http: httpx.AsyncClient, body: dict[str, Any], pointer: str
) -> None:
    response = await http.post(RULES, json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert pointer in [e.get("pointer") for e in response.json()["errors"]]
    assert await rules(http) == []


async def test_sender_not_allowed_names_the_country_reason_and_source(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post(
        RULES,
        json={"channel": "sms", "country": "ca", "sender": {"type": "alphanumeric", "value": "X1"}},
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "urn:otp:problem:sender-not-allowed"
    assert (problem["country"], problem["sender_type"]) == ("CA", "alphanumeric")
    assert problem["source"] == "https://www.twilio.com/en-us/guidelines/ca/sms"
    assert "Canada" in problem["detail"] and problem["source"] in problem["detail"]
    assert await rules(http) == []


async def test_create_conflict_update_delete_and_warnings(http: httpx.AsyncClient) -> None:
    body = {
        "channel": "sms",
        "country": "SG",
        "providers": ["twilio"],
        "sender": {"type": "alphanumeric", "value": "ACME"},
    }
    created = await http.post(RULES, json=body)
    assert created.status_code == 201, created.text
    rule = created.json()
    assert rule["id"].startswith("rte_")
    assert rule["warnings"] and "SSIR" in rule["warnings"][0]  # needs registration

    again = await http.post(RULES, json=body)
    assert again.status_code == 409, again.text
    assert again.json()["rule_id"] == rule["id"]

    updated = await http.put(
        f"{RULES}/{rule['id']}",
        json={**body, "sender": {"type": "long_code", "value": "+6591234567"}},
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["sender"] == {"type": "long_code", "value": "+6591234567"}
    assert updated.json()["warnings"] == []
    assert [r["id"] for r in await rules(http)] == [rule["id"]]

    # Refused on update too, and the rule stays as it was.
    refused = await http.put(
        f"{RULES}/{rule['id']}",
        json={"channel": "sms", "country": "US", "sender": {"type": "alphanumeric", "value": "A"}},
    )
    assert refused.status_code == 422
    assert (await rules(http))[0]["country"] == "SG"

    missing = await http.put(f"{RULES}/rte_{'0' * 24}", json=body)
    assert missing.status_code == 404
    assert missing.json()["type"] == "urn:otp:problem:routing-rule-not-found"
    assert (await http.delete(f"{RULES}/{rule['id']}")).status_code == 204
    assert (await http.delete(f"{RULES}/{rule['id']}")).status_code == 404
    assert await rules(http) == []


async def test_unknown_application(http: httpx.AsyncClient) -> None:
    response = await http.get(f"/v1/admin/applications/app_{'a' * 26}/routing-rules")
    assert response.status_code == 404
    assert response.json()["type"] == "urn:otp:problem:application-not-found"


async def test_explain_prefix_country_default_and_bad_destination(http: httpx.AsyncClient) -> None:
    for body in (
        {"channel": "sms", "sender": {"type": "alphanumeric", "value": "ACME"}},
        {
            "channel": "sms",
            "country": "US",
            "sender": {"type": "long_code", "value": "+15005550009"},
        },
        {
            "channel": "sms",
            "country": "US",
            "prefix": "+1415",
            "sender": {"type": "short_code", "value": "55555"},
        },
    ):
        assert (await http.post(RULES, json=body)).status_code == 201
    prefix = (await http.get(EXPLAIN, params={"to": "+14155550123"})).json()
    assert prefix["match"] == "prefix"
    assert prefix["sender"] == {"type": "short_code", "value": "55555"}
    assert prefix["reasons"][0] == "country US, number prefix +1415"
    assert "+14155550123" not in str(prefix)
    country = (await http.get(EXPLAIN, params={"to": "+12125550123"})).json()
    assert (country["match"], country["sender"]["value"]) == ("country", "+15005550009")
    default = (await http.get(EXPLAIN, params={"to": "+447400123456"})).json()
    assert (default["match"], default["sender"]["value"]) == ("default", "ACME")
    # The default's alphanumeric sender is not used where the country refuses it.
    brazil = (await http.get(EXPLAIN, params={"to": "+5511987654321"})).json()
    assert (brazil["match"], brazil["sender"]) == ("default", None)
    bad = await http.get(EXPLAIN, params={"to": "+1", "channel": "sms"})
    assert bad.status_code == 422
