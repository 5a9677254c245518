"""The README's curl walk-through as data: its block, its steps and what each documents.

The walk-through is the fenced `sh` block between the `walkthrough` snippet markers of
README.md (the getting-started page includes the same section). Each step is either a
variable assignment (`KEY=$(cat .data/dev_api_key)`, `ID=ver_...`) or a curl command,
optionally followed by a `# -> <status> <json>` comment naming the documented answer.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
GETTING_STARTED = ROOT / "docs" / "getting-started.md"

SECTION = "walkthrough"
START = f"--8<-- [start:{SECTION}]"
END = f"--8<-- [end:{SECTION}]"
INCLUDE = f'--8<-- "README.md:{SECTION}"'
# Where the documented commands expect the API.
DOCUMENTED_BASE_URL = "http://127.0.0.1:8000"
PLACEHOLDER = "..."
# `NAME=value`, on one line, with an optional trailing comment.
ASSIGNMENT = re.compile(r"^(?P<name>[A-Z_]+)=(?P<value>\S.*?)(?:\s+#.*)?$")
EXPECTATION = re.compile(r"^(?:(?P<status>\d{3})\s+)?(?P<body>.*)$")
# A quoted key and a JSON scalar in a documented answer; bare `...` values are skipped.
FIELD = re.compile(r'"(?P<key>\w+)":\s*(?P<value>"(?:[^"\\]|\\.)*"|true|false|null|-?\d+)')


@dataclass
class Step:
    """One assignment or command of the walk-through, with its documented answer."""

    text: str
    expect: str | None = None

    @property
    def assignment(self) -> tuple[str, str] | None:
        """(name, value) when the step only sets a shell variable."""
        match = ASSIGNMENT.match(self.text.strip())
        return (match["name"], match["value"]) if match else None


def section(text: str) -> str:
    """The lines between the walkthrough markers (the markers themselves excluded)."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if START in line]
    ends = [i for i, line in enumerate(lines) if END in line]
    assert len(starts) == 1 and len(ends) == 1 and starts[0] < ends[0], "walkthrough markers"
    return "\n".join(lines[starts[0] + 1 : ends[0]])


def shell_block(text: str) -> str:
    """The body of the first fenced `sh` block of `text`."""
    match = re.search(r"^```sh\n(?P<body>.*?)^```$", text, re.MULTILINE | re.DOTALL)
    assert match, "no ```sh block in the walkthrough section"
    return match["body"]


def _complete(text: str) -> bool:
    if text.rstrip().endswith("\\"):
        return False
    try:
        shlex.split(text, comments=True)
    except ValueError:  # an open quote: the command goes on
        return False
    return True


def steps(block: str) -> list[Step]:
    """The block's steps in order; `# ->` comments attach to the step before them."""
    found: list[Step] = []
    pending: list[str] = []
    for line in block.splitlines():
        stripped = line.strip()
        if not pending:
            if not stripped:
                continue
            if stripped.startswith("#"):
                if stripped.startswith("# ->"):
                    assert found, f"an answer before any command: {line}"
                    found[-1].expect = stripped.removeprefix("# ->").strip()
                continue
        pending.append(line)
        text = "\n".join(pending)
        if _complete(text):
            found.append(Step(text))
            pending = []
    assert not pending, f"unfinished command: {pending}"
    return found


def example_code(block: str) -> str:
    """The code the walk-through types in its check (`-d '{"code": "482913"}'`)."""
    match = re.search(r'"code":\s*"(?P<code>[0-9A-Za-z]+)"', block)
    assert match, "the walkthrough checks no code"
    return match["code"]


def documented_fields(expect: str) -> tuple[int, list[tuple[str, Any]]]:
    """(status, [(key, value)]) of a documented answer; no status written means 200."""
    match = EXPECTATION.match(expect)
    assert match, expect
    status = int(match["status"]) if match["status"] else 200
    fields = [(m["key"], json.loads(m["value"])) for m in FIELD.finditer(match["body"])]
    return status, fields


def find(document: Any, key: str) -> Any:
    """The first value of `key` anywhere in a JSON document (depth first)."""
    if isinstance(document, dict):
        if key in document:
            return document[key]
        children: list[Any] = list(document.values())
    elif isinstance(document, list):
        children = document
    else:
        children = []
    for child in children:
        try:
            return find(child, key)
        except KeyError:
            continue
    raise KeyError(key)


def value_pattern(documented: str, code: str) -> re.Pattern[str]:
    """`...` stands for anything; the example code for whichever code was sent."""
    parts = [re.escape(part) for part in documented.split(PLACEHOLDER)]
    pattern = ".*".join(parts).replace(re.escape(code), r"(?P<code>[0-9A-Z]{4,10})", 1)
    return re.compile(pattern, re.DOTALL)
