"""The import layering of pyproject.toml's `[tool.importlinter]` holds, and entry points stay on top.

import-linter checks the packages; `worker.py` is a module it cannot take as a root, so
the last tests read every module of the project for imports of the entry points.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("otp", "api", "activities", "workflows", "providers", "cli")
# The linter, on pyproject.toml or on the config file given as the one argument.
LINT = (
    "import sys; from importlinter.cli import lint_imports; "
    "sys.exit(lint_imports(config_filename=(sys.argv[1:] or [None])[0], no_cache=True))"
)


def _imported(source: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _project_modules() -> list[Path]:
    files = [ROOT / "worker.py"]
    for package in PACKAGES:
        files.extend(sorted((ROOT / package).rglob("*.py")))
    return files


def test_every_import_contract_is_kept() -> None:
    result = subprocess.run(
        [sys.executable, "-c", LINT], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_broken_contract_fails_the_linter(tmp_path: Path) -> None:
    config = tmp_path / "contracts.toml"
    config.write_text(
        '[tool.importlinter]\nroot_packages = ["otp"]\n\n'
        "[[tool.importlinter.contracts]]\n"
        'name = "settings without the domain (false: it uses Mode)"\n'
        'type = "forbidden"\nsource_modules = ["otp.settings"]\n'
        'forbidden_modules = ["otp.domain"]\n'
    )
    result = subprocess.run(
        [sys.executable, "-c", LINT, str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "1 broken" in result.stdout


@pytest.mark.parametrize("entry_point", ["worker", "cli"])
def test_no_module_below_the_entry_points_imports_them(entry_point: str) -> None:
    importers = []
    for source in _project_modules():
        if source.is_relative_to(ROOT / "cli"):
            continue  # the `otp` command runs the worker (`otp worker`)
        names = _imported(source)
        if any(name == entry_point or name.startswith(entry_point + ".") for name in names):
            importers.append(str(source.relative_to(ROOT)))
    assert importers == []


def test_the_scan_sees_an_import_of_an_entry_point(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    import worker\n    from cli.main import app\n")
    assert {"worker", "cli.main"} <= _imported(module)
