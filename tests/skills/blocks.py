"""The skill's code blocks as data: every fenced block of SKILL.md and reference/*.md.

Each block opens with a language and a `title="..."` naming the file it stands for
(```` ```python title="app.py" ````). `kind` says which test runs a block; a block it
cannot place raises, so a new block without a runner fails the suite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKILL = ROOT / "skills" / "otp-verification"
PAGES = [SKILL / "SKILL.md", *sorted((SKILL / "reference").glob("*.md"))]

FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<code>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
INFO = re.compile(r'^(?P<lang>[\w.+-]+)(?:\s+title="(?P<title>[^"]+)")?\s*$')

SHELL_KINDS = {
    "detect.sh": "detect",
    ".env": "env",
    "check.sh": "check",
    "api.sh": "shell",
    "webhooks.sh": "shell",
}
PYTHON_PAGES = {"fastapi.md": "fastapi", "flask.md": "flask", "django.md": "django"}
NODE_PAGES = {("express.md", "js"): "express", ("nextjs.md", "ts"): "nextjs"}
KINDS = {*SHELL_KINDS.values(), *PYTHON_PAGES.values(), *NODE_PAGES.values()}


@dataclass(frozen=True)
class Block:
    page: str  # SKILL.md or reference/<name>.md
    lang: str
    title: str | None
    code: str
    line: int

    def __str__(self) -> str:
        return f"{self.page}:{self.line} ({self.lang} {self.title})"


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        info = INFO.match(match["info"].strip())
        if info is None:
            raise ValueError(f"{page.name}: a block without a language: {match['info']!r}")
        found.append(
            Block(
                page=page.relative_to(SKILL).as_posix(),
                lang=info["lang"],
                title=info["title"],
                code=match["code"],
                line=text.count("\n", 0, match.start()) + 1,
            )
        )
    return found


def all_blocks() -> list[Block]:
    return [block for page in PAGES for block in blocks(page)]


def kind(block: Block) -> str:
    """Which runner executes `block`; raises for a block no test knows how to run."""
    name = Path(block.page).name
    if block.title is None:
        raise ValueError(f"{block}: no title=, so no test knows how to run it")
    if block.lang == "sh" and block.title in SHELL_KINDS:
        return SHELL_KINDS[block.title]
    if block.lang == "python" and name in PYTHON_PAGES:
        return PYTHON_PAGES[name]
    if (name, block.lang) in NODE_PAGES:
        return NODE_PAGES[(name, block.lang)]
    raise ValueError(f"{block}: no runner for this language and page")


def of_kind(wanted: str) -> list[Block]:
    found = [block for block in all_blocks() if kind(block) == wanted]
    assert found, f"no {wanted} block in the skill"
    return found
