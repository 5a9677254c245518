"""The Python SDK's models against the served OpenAPI document: a drift fails here.

Each response model of `otp_client.models` is compared with its component schema (field
names both ways; a field the SDK requires must be required by the API). Request bodies and
queries are the client methods' parameters, compared with the request schemas and query
parameters (names both ways, required-ness exactly). The client's requests, recorded
through a mock transport, must cover every operation an API-key client can call.
"""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from otp_client import OtpClient, OtpError, models
from pydantic import BaseModel

from tests.helpers.openapi import (
    Operation,
    Shape,
    client_operations,
    drift,
    object_components,
    operation_of,
    query_shape,
    schema_shape,
)

# SDK model -> the component it reads.
MODELS: dict[type[BaseModel], str] = {
    models.ChannelStep: "ChannelStepCreate",
    models.ChannelStepInfo: "ChannelStepPublic",
    models.Delivery: "DeliveryPublic",
    models.Cost: "CostPublic",
    models.Sender: "SenderPublic",
    models.VerificationCreated: "VerificationCreated",
    models.Verification: "VerificationPublic",
    models.CheckResult: "CheckResponse",
    models.ResendResult: "ResendResponse",
    models.NextChannelResult: "NextChannelResponse",
    models.CancelResult: "CancelResponse",
    models.VerificationSummary: "VerificationSummary",
    models.VerificationPage: "VerificationPage",
    models.Event: "EventPublic",
    models.VerificationEvents: "VerificationEvents",
    models.AnalyticsFigures: "AnalyticsFigures",
    models.AnalyticsReport: "AnalyticsReport",
    models.SandboxMessage: "SandboxMessagePublic",
    models.SandboxMessageList: "SandboxMessageList",
    models.WebhookEndpoint: "WebhookEndpointPublic",
    models.WebhookEndpointCreated: "WebhookEndpointCreated",
    models.WebhookEndpointList: "WebhookEndpointList",
    models.WebhookEndpointSecret: "WebhookEndpointSecret",
    models.WebhookSecretRotated: "WebhookSecretRotated",
    models.WebhookTestSent: "WebhookTestSent",
    models.WebhookMessage: "WebhookMessagePublic",
    models.WebhookMessageList: "WebhookMessageList",
    models.WebhookAttempt: "WebhookAttemptPublic",
    models.WebhookAttemptList: "WebhookAttemptList",
    models.Problem: "Problem",
}

# Client method -> the request body schema its parameters make (path ids and keys aside).
BODIES: dict[Callable[..., Any], str] = {
    OtpClient.start_verification: "VerificationCreate",
    OtpClient.check: "CheckRequest",
    OtpClient.create_webhook_endpoint: "WebhookEndpointCreate",
    OtpClient.update_webhook_endpoint: "WebhookEndpointUpdate",
    OtpClient.rotate_webhook_endpoint_secret: "WebhookSecretRotate",
}

# Client method -> the operation whose query its parameters make.
QUERIES: dict[Callable[..., Any], Operation] = {
    OtpClient.search: ("GET", "/v1/verifications"),
    OtpClient.analytics: ("GET", "/v1/analytics"),
    OtpClient.sandbox_messages: ("GET", "/v1/sandbox/messages"),
    OtpClient.list_webhook_messages: ("GET", "/v1/webhook-endpoints/{endpoint_id}/messages"),
}

NOT_FIELDS = {"self", "idempotency_key"}

# Operations of the API the Python SDK does not offer (yet); a new one fails the test.
NOT_IN_SDK: set[Operation] = set()
# Components only those operations use.
NOT_IN_SDK_COMPONENTS: set[str] = set()


@pytest.fixture
async def openapi(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/openapi.json")
    assert response.status_code == 200
    doc: dict[str, Any] = response.json()
    return doc


def model_shape(model: type[BaseModel]) -> Shape:
    return {name: info.is_required() for name, info in model.model_fields.items()}


def parameter_shape(method: Callable[..., Any], *, path_ids: set[str]) -> Shape:
    """A method's parameters (without the ids that go in the path) and which are required."""
    return {
        name: parameter.default is inspect.Parameter.empty
        for name, parameter in inspect.signature(method).parameters.items()
        if name not in NOT_FIELDS | path_ids
    }


def _path_ids(path: str) -> set[str]:
    return set(re.findall(r"\{([^/]+?)\}", path))


def sdk_drift(doc: dict[str, Any]) -> list[str]:
    """Every difference between the SDK's models and parameters and the document."""
    schemas = doc["components"]["schemas"]
    problems: list[str] = []
    for model, component in MODELS.items():
        if component not in schemas:
            problems.append(f"{model.__name__}: the API has no component {component}")
            continue
        label = f"{model.__name__} ({component})"
        exact = model is models.ChannelStep  # a request model: what it must send
        problems += drift(
            label, model_shape(model), schema_shape(doc, component), exact_required=exact
        )
    for method, component in BODIES.items():
        label = f"OtpClient.{method.__name__} ({component})"
        api = schema_shape(doc, component)
        sdk = parameter_shape(method, path_ids={"verification_id", "endpoint_id"})
        problems += drift(label, sdk, api, exact_required=True)
    for method, operation in QUERIES.items():
        label = f"OtpClient.{method.__name__} (query of {' '.join(operation)})"
        api = query_shape(doc, operation)
        sdk = parameter_shape(method, path_ids=_path_ids(operation[1]))
        problems += drift(label, sdk, api, exact_required=True)
    return problems


def coverage_drift(doc: dict[str, Any], sent: set[Operation]) -> list[str]:
    """Operations the client lacks, and object schemas they use that no model reads."""
    operations = client_operations(doc)
    problems = [f"the SDK lacks {m} {p}" for m, p in sorted(operations - sent - NOT_IN_SDK)]
    problems += [f"the SDK now offers {m} {p}" for m, p in sorted(NOT_IN_SDK & sent)]
    named = set(MODELS.values()) | set(BODIES.values()) | NOT_IN_SDK_COMPONENTS
    problems += [
        f"no SDK model reads the component {c}"
        for c in sorted(object_components(doc, operations) - named)
    ]
    return problems


def _placeholders(method: Callable[..., Any]) -> list[str]:
    return [
        f"arg{i}"
        for i, (name, parameter) in enumerate(inspect.signature(method).parameters.items())
        if name != "self"
        and parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        and parameter.default is inspect.Parameter.empty
    ]


def sent_operations(doc: dict[str, Any]) -> set[Operation]:
    """The operations the blocking client's public methods call (answers are not read)."""
    seen: list[tuple[str, str]] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path))
        return httpx.Response(200, json={})

    client = OtpClient("otp_test_x", max_retries=0, transport=httpx.MockTransport(record))
    for name, method in inspect.getmembers(OtpClient, inspect.isfunction):
        if name.startswith("_") or name == "close":
            continue
        try:
            result = getattr(client, name)(*_placeholders(method))
            if isinstance(result, Iterator):
                next(result, None)
        except OtpError:
            pass  # `{}` is not every operation's answer: only the request matters here
    sent: set[Operation] = set()
    for method_name, path in seen:
        operation = operation_of(doc, method_name, path)
        assert operation is not None, f"the SDK sends {method_name} {path}, which the API lacks"
        sent.add(operation)
    return sent


def test_every_response_model_is_compared() -> None:
    defined = {
        value
        for value in vars(models).values()
        if isinstance(value, type)
        and issubclass(value, models.ApiModel)
        and value is not models.ApiModel
    }
    assert defined - MODELS.keys() == set()


async def test_python_sdk_matches_the_served_openapi(openapi: dict[str, Any]) -> None:
    assert sdk_drift(openapi) == []


async def test_python_client_covers_every_operation_and_schema(openapi: dict[str, Any]) -> None:
    assert coverage_drift(openapi, sent_operations(openapi)) == []


async def test_a_deliberate_drift_fails_the_comparison(openapi: dict[str, Any]) -> None:
    doc = copy.deepcopy(openapi)
    schemas = doc["components"]["schemas"]
    schemas["VerificationPublic"]["properties"]["risk_score"] = {"type": "number"}
    del schemas["CheckResponse"]["properties"]["attempts_remaining"]
    schemas["CheckResponse"]["required"].remove("attempts_remaining")
    schemas["CancelResponse"]["required"].remove("status")
    schemas["VerificationCreate"]["required"].append("locale")
    doc["paths"]["/v1/analytics"]["get"]["parameters"].append(
        {"name": "timezone", "in": "query", "required": False, "schema": {"type": "string"}}
    )
    assert sdk_drift(doc) == [
        "Verification (VerificationPublic): the API has `risk_score`, the SDK lacks it",
        "CheckResult (CheckResponse): the SDK has `attempts_remaining`, the API does not",
        "CancelResult (CancelResponse).status: required in the SDK, optional in the API",
        "OtpClient.start_verification (VerificationCreate).locale: "
        "required in the API, optional in the SDK",
        "OtpClient.analytics (query of GET /v1/analytics): the API has `timezone`, the SDK lacks it",
    ]
    assert sdk_drift(openapi) == [], "the original document is untouched"

    doc["paths"]["/v1/verifications/{verification_id}/pause"] = {
        "post": {
            "responses": {
                "200": {
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Paused"}}
                    }
                }
            }
        }
    }
    schemas["Paused"] = {"properties": {"id": {"type": "string"}}, "required": ["id"]}
    assert coverage_drift(doc, sent_operations(openapi)) == [
        "the SDK lacks POST /v1/verifications/{verification_id}/pause",
        "no SDK model reads the component Paused",
    ]
