"""Property-based fuzzing of the HTTP API from its own OpenAPI document (schemathesis).

Every operation gets generated requests, valid and invalid, against the real service
(uvicorn, the dev server, a real worker, the sandbox provider). Whatever comes in: no 5xx,
every answer is documented (status code, content type, schema), and anything refused is
an RFC 9457 problem.
"""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from otp.applications.model import DEFAULT_APPLICATION_ID
from otp.settings import Secrets, Settings
from otp.store import Store
from tests.helpers.api import Keys, make_settings
from tests.helpers.serving import served

ADMIN_TOKEN = "fuzzing-admin-token-0123456789abcdef"
EXAMPLES = 25
# Not `positive_data_acceptance`: a schema-valid string is not always a valid phone
# number or email (that is checked beyond the schema, and answered 422 by design).
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.negative_data_rejection,
]
# Receipt callbacks are signed by the provider and answer 403 to anything else; their
# bodies are the provider's form posts, not this schema's: covered by their own tests.
SKIPPED_PATHS = ("/v1/webhooks/",)


def _short_waits(case: Any) -> None:
    """A valid long-poll `wait` (up to 20 s on an empty inbox) becomes 50 ms: still a wait,
    but 25 cases of this operation must not take minutes. Invalid values stay as generated."""
    query = case.query
    if not isinstance(query, dict):
        return
    wait = query.get("wait")
    if isinstance(wait, (int, float)) and not isinstance(wait, bool) and 0 < wait <= 20:
        query["wait"] = 0.05


def _runner(
    operation: Any, base_url: str, headers: dict[str, str], answers: Counter[str]
) -> Callable[[], None]:
    """A hypothesis test of one operation: generated cases sent and checked."""

    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        _short_waits(case)
        response = case.call_and_validate(
            base_url=base_url, headers=headers, checks=CHECKS, timeout=30
        )
        answers[f"{response.status_code}"] += 1

    return run


def _fuzz(base_url: str, keys: Keys) -> tuple[list[str], Counter[str]]:
    """Run every operation: the failures found (empty: none) and the answers by status."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    answers: Counter[str] = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an Err would mean a bad schema
        if operation.path.startswith(SKIPPED_PATHS):
            continue
        token = ADMIN_TOKEN if operation.path.startswith("/v1/admin") else keys.test
        headers = {"Authorization": f"Bearer {token}"}
        if operation.path.startswith("/v2/"):  # Twilio-compatible: HTTP Basic
            basic = base64.b64encode(f"{DEFAULT_APPLICATION_ID}:{keys.test}".encode()).decode()
            headers = {"Authorization": f"Basic {basic}"}

        run = _runner(operation, base_url, headers, answers)

        try:
            run()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # schemathesis raises a BaseExceptionGroup
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:3000])
        answers["operations"] += 1
    return failures, answers


@pytest.fixture
def fuzz_settings(data_dir: Path, task_queue: str, secrets: Secrets, keys: Keys) -> Settings:
    return make_settings(data_dir, task_queue, secrets, keys).model_copy(
        update={"admin_token": SecretStr(ADMIN_TOKEN)}
    )


@pytest.mark.timeout(600)
async def test_no_input_breaks_the_api(
    fuzz_settings: Settings,
    dev_env: WorkflowEnvironment,
    store: Store,
    keys: Keys,
    worker: None,
) -> None:
    app = create_app(fuzz_settings, client=dev_env.client, store=store)
    async with served(app) as base_url:
        failures, answers = await asyncio.to_thread(_fuzz, base_url, keys)
    assert not failures, "\n\n".join(failures)
    assert answers["operations"] >= 30, answers  # every documented operation was fuzzed
    assert sum(v for k, v in answers.items() if k.startswith("4")) > 100, answers
