"""The workflow's helper modules are safe to share with the sandbox, and shared.

VerificationWorkflow passes its helpers (workflows/steps.py, ...) through the sandbox, so
the sandbox neither re-executes them per run nor watches them: these tests do. A helper
imports only the standard library modules listed here, temporalio, otp.domain and other
helpers; calls no clock; and keeps no mutable state at module level.
"""

from __future__ import annotations

import ast
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.workflows.sandbox_probe import SharedHelpersProbe

FOLDER = Path(__file__).resolve().parents[2] / "workflows"
# Not workflow helpers: the workflows themselves (verification, webhooks, provider_check),
# the client-side dispatch, and precompile
# (run by the worker before it starts, outside any workflow).
NOT_HELPERS = {
    "__init__",
    "verification",
    "webhooks",
    "provider_check",
    "dispatch",
    "precompile",
    "monitor",  # a workflow
    "monitor_start",  # client side: starts the monitor
}
HELPERS = sorted(path.stem for path in FOLDER.glob("*.py") if path.stem not in NOT_HELPERS)
STDLIB = {"__future__", "dataclasses", "datetime", "enum", "math", "typing", "collections"}
CLOCKS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter", "time_ns", "sleep"}


def imported(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "helpers import by absolute name"
            names.add(node.module or "")
    return names


def allowed(module: str) -> bool:
    top = module.split(".")[0]
    helper = module.startswith("workflows.") and module.split(".", 1)[1] in HELPERS
    domain = module == "otp.domain" or module.startswith("otp.domain.")  # pure: a contract
    return top in STDLIB or top == "temporalio" or domain or helper


@pytest.mark.parametrize("helper", HELPERS)
def test_a_helper_imports_only_what_the_sandbox_allows(helper: str) -> None:
    tree = ast.parse((FOLDER / f"{helper}.py").read_text())
    assert {m for m in imported(tree) if not allowed(m)} == set()
    assert "temporalio.workflow" not in imported(tree)  # no workflow APIs: plain logic


@pytest.mark.parametrize("helper", HELPERS)
def test_a_helper_calls_no_clock(helper: str) -> None:
    tree = ast.parse((FOLDER / f"{helper}.py").read_text())
    calls = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert calls & CLOCKS == set()


@pytest.mark.parametrize("helper", HELPERS)
def test_a_helper_keeps_no_mutable_state_at_module_level(helper: str) -> None:
    tree = ast.parse((FOLDER / f"{helper}.py").read_text())
    mutable = (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            assert not isinstance(node.value, mutable), ast.unparse(node)
        assert not isinstance(node, ast.Global)


async def test_the_workflow_shares_its_helpers_with_the_sandbox(
    ts_env: WorkflowEnvironment,
) -> None:
    """One copy of each helper serves every run: the sandbox loads only the workflow module."""
    assert {"delivery", "event_log", "outcomes", "receipts", "resend", "steps"} <= set(HELPERS)
    names = [f"workflows.{helper}" for helper in HELPERS]
    host_ids = {name: id(sys.modules[name]) for name in [*names, "workflows.verification"]}
    task_queue = f"tq-{uuid.uuid4().hex[:12]}"
    async with Worker(ts_env.client, task_queue=task_queue, workflows=[SharedHelpersProbe]):
        private = await ts_env.client.execute_workflow(
            SharedHelpersProbe.run, host_ids, id=f"probe-{uuid.uuid4().hex}", task_queue=task_queue
        )
    assert private == ["workflows.verification"]
