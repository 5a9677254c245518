"""The Node SDK's types against the served OpenAPI document: a drift fails here.

`sdk-node/scripts/types.mjs` lists the interfaces of `src/models.ts` that name a component
(`@schema`) or an operation's query (`@query`), with each field and whether it is
optional; `scripts/operations.mjs` lists the requests the built client sends. The types
say what the API guarantees, so optional-ness must match the API's `required` exactly.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest

from tests.helpers.node import node_executable, npm_ci, run
from tests.helpers.openapi import (
    Operation,
    client_operations,
    drift,
    object_components,
    operation_of,
    query_shape,
    schema_shape,
)
from tests.sdk_node.sdk import SDK, built_sdk

NodeTypes = dict[str, dict[str, Any]]


async def _node_json(*argv: str, build: bool = False) -> Any:
    await (built_sdk() if build else npm_ci(SDK))
    result = await run([node_executable(), *argv], cwd=SDK)
    assert result.returncode == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
async def openapi(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/openapi.json")
    assert response.status_code == 200
    doc: dict[str, Any] = response.json()
    return doc


_TYPES: list[NodeTypes] = []  # read once per session: the sources do not change under it


@pytest.fixture
async def node_types() -> NodeTypes:
    if not _TYPES:
        _TYPES.append(await _node_json("scripts/types.mjs"))
    return copy.deepcopy(_TYPES[0])


def type_drift(doc: dict[str, Any], types: NodeTypes) -> list[str]:
    """Every difference between the SDK's types and the document."""
    problems: list[str] = []
    schemas = doc["components"]["schemas"]
    for name, entry in sorted(types.items()):
        sdk = {field: not optional for field, optional in entry["fields"].items()}
        if "schema" in entry:
            component = entry["schema"]
            if component not in schemas:
                problems.append(f"{name}: the API has no component {component}")
                continue
            api = schema_shape(doc, component)
            problems += drift(f"{name} ({component})", sdk, api, exact_required=True)
        if "query" in entry:
            method, _, path = entry["query"].partition(" ")
            if method.lower() not in doc["paths"].get(path, {}):
                problems.append(f"{name}: the API has no operation {entry['query']}")
                continue
            api = query_shape(doc, (method, path))
            problems += drift(f"{name} (query of {entry['query']})", sdk, api, exact_required=True)
    return problems


def coverage_drift(doc: dict[str, Any], types: NodeTypes, sent: set[Operation]) -> list[str]:
    """Operations the client lacks, and object schemas they use that no type names."""
    operations = client_operations(doc)
    problems = [f"the SDK lacks {m} {p}" for m, p in sorted(operations - sent)]
    named = {entry["schema"] for entry in types.values() if "schema" in entry}
    problems += [
        f"no SDK type names the component {c}"
        for c in sorted(object_components(doc, operations) - named)
    ]
    queried = {entry["query"] for entry in types.values() if "query" in entry}
    problems += [
        f"no SDK type names the query of {m} {p}"
        for m, p in sorted(operations)
        if query_shape(doc, (m, p)) and f"{m} {p}" not in queried
    ]
    return problems


async def test_node_types_match_the_served_openapi(
    openapi: dict[str, Any], node_types: NodeTypes
) -> None:
    assert len(node_types) >= 30
    assert type_drift(openapi, node_types) == []


async def test_node_client_covers_every_operation_and_schema(
    openapi: dict[str, Any], node_types: NodeTypes
) -> None:
    requests = await _node_json("scripts/operations.mjs", build=True)
    sent: set[Operation] = set()
    for method, path in requests:
        operation = operation_of(openapi, method, path)
        assert operation is not None, f"the SDK sends {method} {path}, which the API lacks"
        sent.add(operation)
    assert coverage_drift(openapi, node_types, sent) == []


async def test_a_deliberate_drift_fails_the_comparison(
    openapi: dict[str, Any], node_types: NodeTypes
) -> None:
    doc = copy.deepcopy(openapi)
    schemas = doc["components"]["schemas"]
    schemas["VerificationPublic"]["properties"]["risk_score"] = {"type": "number"}
    del schemas["CheckResponse"]["properties"]["attempts_remaining"]
    schemas["CheckResponse"]["required"].remove("attempts_remaining")
    schemas["CancelResponse"]["required"].remove("status")
    schemas["ChannelStepCreate"]["required"].append("timeout_s")
    doc["paths"]["/v1/analytics"]["get"]["parameters"].append(
        {"name": "timezone", "in": "query", "required": False, "schema": {"type": "string"}}
    )
    assert type_drift(doc, node_types) == [
        "AnalyticsParams (query of GET /v1/analytics): the API has `timezone`, the SDK lacks it",
        "CancelResult (CancelResponse).status: required in the SDK, optional in the API",
        "ChannelStep (ChannelStepCreate).timeout_s: required in the API, optional in the SDK",
        "CheckResult (CheckResponse): the SDK has `attempts_remaining`, the API does not",
        "Verification (VerificationPublic): the API has `risk_score`, the SDK lacks it",
    ]
    assert type_drift(openapi, node_types) == [], "the original document is untouched"

    # A new operation, and a new component it answers with.
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
    sent = client_operations(openapi)
    assert coverage_drift(doc, node_types, sent) == [
        "the SDK lacks POST /v1/verifications/{verification_id}/pause",
        "no SDK type names the component Paused",
    ]
