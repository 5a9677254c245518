"""Node.js from the tests: install a folder's locked npm packages, run node against the service.

Every Node folder of the project (an SDK, an example, a contract test) has its own
`package.json` and committed `package-lock.json`; `npm ci` installs exactly the lock, once,
and again only when the lock changes. Node processes run with `asyncio` subprocesses: the
service they talk to is served by uvicorn on the test's own event loop, so a blocking
`subprocess.run` would stall it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The lock npm writes into node_modules after an install: newer than package-lock.json
# means the installed tree is the locked one.
_INSTALLED_LOCK = Path("node_modules") / ".package-lock.json"


@dataclass(frozen=True)
class NodeRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def node_executable() -> str:
    """The `node` executable; the test fails (not skips) where Node is missing: CI has it."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (Node 18 or newer is needed for the Node tests)")
    return node


async def run(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 120.0,
) -> NodeRun:
    """Run a command without blocking the event loop; kill it at the timeout."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        return NodeRun(-9, out.decode(errors="replace"), err.decode(errors="replace"))
    assert proc.returncode is not None
    return NodeRun(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


async def npm_ci(folder: Path) -> None:
    """`npm ci` in `folder` unless its node_modules already holds the committed lock."""
    node_executable()
    lock = folder / "package-lock.json"
    assert lock.is_file(), f"{lock} is missing: every Node folder commits its lock file"
    installed = folder / _INSTALLED_LOCK
    if installed.is_file() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    npm = shutil.which("npm")
    assert npm is not None, "npm is not installed"
    result = await run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=folder, timeout_s=600
    )
    assert result.returncode == 0, f"npm ci in {folder} failed\n{result.output}"


async def node_test(
    folder: Path,
    files: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 240.0,
) -> NodeRun:
    """`node --test` over `files` in `folder` (after `npm ci`), with `env` added."""
    await npm_ci(folder)
    return await run(
        [node_executable(), "--test", *files], cwd=folder, env=env, timeout_s=timeout_s
    )
