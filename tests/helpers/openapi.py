"""Compare an SDK's types with the service's OpenAPI document: the SDK drift tests.

A *shape* is what an SDK knows of one schema or query: field name -> required. The API's
shape comes from the served `/openapi.json` (component `properties` and `required`, or an
operation's query parameters); each SDK test builds its own from its types. `drift` lists
every difference in words, so a failing test says what to change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

Shape = Mapping[str, bool]  # field name -> required
Operation = tuple[str, str]  # ("GET", "/v1/verifications/{verification_id}")

# Paths an API-key client calls; provider callbacks and the admin API are not SDK calls.
_CLIENT_PREFIX = "/v1/"
_NOT_CLIENT = ("/v1/webhooks/", "/v1/admin/")
_METHODS = {"get", "post", "put", "patch", "delete"}


def schema_shape(doc: Mapping[str, Any], component: str) -> dict[str, bool]:
    """The fields of a component schema and whether each is required."""
    schema = doc["components"]["schemas"][component]
    required = set(schema.get("required", []))
    return {name: name in required for name in schema.get("properties", {})}


def query_shape(doc: Mapping[str, Any], operation: Operation) -> dict[str, bool]:
    """The query parameters of an operation and whether each is required."""
    method, path = operation
    parameters = doc["paths"][path][method.lower()].get("parameters", [])
    return {p["name"]: bool(p.get("required")) for p in parameters if p["in"] == "query"}


def drift(label: str, sdk: Shape, api: Shape, *, exact_required: bool) -> list[str]:
    """Differences between an SDK shape and the API's.

    Names must match both ways. A field the SDK requires must be required by the API;
    with `exact_required`, a field the API requires must also be required by the SDK.
    """
    problems = [
        f"{label}: the API has `{name}`, the SDK lacks it" for name in sorted(api.keys() - sdk)
    ]
    problems += [
        f"{label}: the SDK has `{name}`, the API does not" for name in sorted(sdk.keys() - api)
    ]
    for name in sorted(api.keys() & sdk.keys()):
        if sdk[name] and not api[name]:
            problems.append(f"{label}.{name}: required in the SDK, optional in the API")
        elif exact_required and api[name] and not sdk[name]:
            problems.append(f"{label}.{name}: required in the API, optional in the SDK")
    return problems


def client_operations(doc: Mapping[str, Any]) -> set[Operation]:
    """Every operation of the API an SDK should offer."""
    return {
        (method.upper(), path)
        for path, item in doc["paths"].items()
        if path.startswith(_CLIENT_PREFIX) and not path.startswith(_NOT_CLIENT)
        for method in item
        if method in _METHODS
    }


def operation_of(doc: Mapping[str, Any], method: str, path: str) -> Operation | None:
    """The documented operation a concrete request (`GET /v1/verifications/ver_1`) calls."""
    for template, item in doc["paths"].items():
        if method.lower() not in item:
            continue
        pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            return (method.upper(), template)
    return None


def _refs(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            yield ref.rsplit("/", 1)[1]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def object_components(doc: Mapping[str, Any], operations: Iterable[Operation]) -> set[str]:
    """Object schemas the operations' bodies and answers use, directly or nested.

    Enumerations are left out: both SDKs read enumerated values as plain strings.
    """
    schemas = doc["components"]["schemas"]
    todo = [
        name
        for method, path in operations
        for part in ("requestBody", "responses")
        for name in _refs(doc["paths"][path][method.lower()].get(part, {}))
    ]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(_refs(schemas[name]))
    return {name for name in seen if "properties" in schemas[name]}
