"""Workflow modules get a bytecode cache before the worker starts polling."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from workflows.precompile import precompile_workflows


def test_workflow_modules_get_a_bytecode_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sandbox re-imports the workflow module per workflow: it must not recompile it."""
    import importlib.util

    import workflows.verification

    source = Path(workflows.verification.__file__)
    cached = Path(importlib.util.cache_from_source(str(source)))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    if cached.exists():
        cached.unlink()
    assert precompile_workflows()
    assert cached.exists() and cached.stat().st_mtime >= source.stat().st_mtime
