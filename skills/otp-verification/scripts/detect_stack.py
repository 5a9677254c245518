#!/usr/bin/env python3
"""Print the web stack(s) of a workspace as JSON: which reference file to follow, and why.

    python3 detect_stack.py [FOLDER]

Looks at the folder and its sub-folders two levels down (a monorepo's `backend/`,
`apps/web/`), skipping dependencies and build output:

- Express: `express` in a package.json's dependencies;
- Next.js: `next` in a package.json's dependencies, or a `next.config.*` file;
- Django: a `manage.py`, or `django` in the Python requirements;
- FastAPI, Flask: `fastapi` / `flask` in the Python requirements (requirements*.txt,
  pyproject.toml, Pipfile, setup.py, setup.cfg).

Standard library only (Python 3.9+). Exit 0, also when nothing is found (`"stacks": []`).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

SKIP = {
    ".git", ".hg", ".venv", "venv", "env", "node_modules", "__pycache__", ".next",
    "dist", "build", ".tox", ".mypy_cache", ".pytest_cache", "site-packages",
}  # fmt: skip
MAX_DEPTH = 2
PYTHON_FILES = ("pyproject.toml", "Pipfile", "setup.py", "setup.cfg")
PYTHON_STACKS = ("fastapi", "flask", "django")
NODE_STACKS = {"express": "express", "next": "nextjs"}
ORDER = ("nextjs", "express", "django", "fastapi", "flask")


def _python_requirement(text: str, name: str) -> bool:
    """`name` as a requirement: a line of its own or a quoted string, then a version or end."""
    after = r"\s*(?:\[[^\]]*\])?\s*(?:[<>=!~;@]|$)"
    line = re.compile(rf"(?im)^\s*{name}{after}")  # requirements.txt, Pipfile/poetry `name =`
    quoted = re.compile(rf"""(?i)["']{name}\s*(?:\[[^\]]*\])?\s*(?:[<>=!~;@][^"']*)?["']""")
    return bool(line.search(text) or quoted.search(text))


def _python_files(folder: Path) -> list[Path]:
    found = [folder / name for name in PYTHON_FILES if (folder / name).is_file()]
    found += sorted(folder.glob("requirements*.txt")) + sorted(folder.glob("requirements/*.txt"))
    return found


def _package_dependencies(package_json: Path) -> set[str]:
    try:
        data = json.loads(package_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    names: set[str] = set()
    for key in ("dependencies", "devDependencies", "peerDependencies"):
        section = data.get(key) if isinstance(data, dict) else None
        if isinstance(section, dict):
            names.update(section)
    return names


def _folders(root: Path) -> list[Path]:
    folders = [root]
    for dirpath, dirnames, _ in os.walk(root):
        depth = len(Path(dirpath).relative_to(root).parts)
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP and not d.startswith("."))
        if depth >= MAX_DEPTH:
            dirnames[:] = []
        folders += [Path(dirpath) / d for d in dirnames]
    return folders


def detect(root: Path) -> list[dict[str, object]]:
    """Each stack found: its name, folder (relative), the files that tell, its reference."""
    found: dict[tuple[str, str], list[str]] = {}

    def note(stack: str, folder: Path, evidence: Path) -> None:
        key = (stack, folder.relative_to(root).as_posix() or ".")
        found.setdefault(key, []).append(evidence.relative_to(root).as_posix())

    for folder in _folders(root):
        package_json = folder / "package.json"
        if package_json.is_file():
            dependencies = _package_dependencies(package_json)
            for dependency, stack in NODE_STACKS.items():
                if dependency in dependencies:
                    note(stack, folder, package_json)
        for config in sorted(folder.glob("next.config.*")):
            note("nextjs", folder, config)
        if (folder / "manage.py").is_file():
            note("django", folder, folder / "manage.py")
        for requirements in _python_files(folder):
            try:
                text = requirements.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            for stack in PYTHON_STACKS:
                if _python_requirement(text, stack):
                    note(stack, folder, requirements)
    stacks: list[dict[str, object]] = [
        {
            "stack": stack,
            "folder": folder,
            "evidence": sorted(set(evidence)),
            "reference": f"reference/{stack}.md",
        }
        for (stack, folder), evidence in found.items()
    ]
    return sorted(stacks, key=lambda s: (str(s["folder"]), ORDER.index(str(s["stack"]))))


def main(argv: list[str]) -> int:
    if len(argv) > 2 or (len(argv) == 2 and argv[1] in ("-h", "--help")):
        print(__doc__.strip())
        return 0 if len(argv) == 2 else 2
    root = Path(argv[1] if len(argv) == 2 else ".").resolve()
    if not root.is_dir():
        print(f"detect_stack: {root} is not a folder", file=sys.stderr)
        return 2
    print(json.dumps({"root": str(root), "stacks": detect(root)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
