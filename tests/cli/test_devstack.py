"""`otp dev` end to end: Temporal, worker and API start, answer, and all stop on Ctrl-C.

Exit codes: 0 after a requested stop (SIGINT/SIGTERM), 1 when a child died on its
own or the stack could not start.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.helpers.cli import PYTHON, clean_env, free_port, run

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")

START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 15


@dataclass
class Stack:
    proc: asyncio.subprocess.Process
    output: Path
    data_dir: Path
    api: str

    def text(self) -> str:
        return self.output.read_text(errors="replace")


def stack_env(data_dir: Path) -> dict[str, str]:
    return clean_env(
        OTP_DATA_DIR=str(data_dir),
        OTP_API_PORT=str(free_port()),
        OTP_TEMPORAL_PORT=str(free_port()),
        OTP_TEMPORAL_UI_PORT=str(free_port()),
    )


@asynccontextmanager
async def otp_dev(env: dict[str, str], output: Path) -> AsyncIterator[Stack]:
    with output.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            PYTHON,
            "-m",
            "cli.main",
            "dev",
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=sink,
            stderr=asyncio.subprocess.STDOUT,
        )
    stack = Stack(
        proc, output, Path(env["OTP_DATA_DIR"]), f"http://127.0.0.1:{env['OTP_API_PORT']}"
    )
    try:
        yield stack
    finally:
        if proc.returncode is None:
            with suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        for pid in descendants(proc.pid):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of a process, or None once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def descendants(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents[int(entry.name)] = stat[1]
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def children_by_role(root: int) -> dict[str, int]:
    roles = {
        "temporal": "server start-dev",
        "worker": "cli.main worker",
        "api": "cli.main api",
    }
    found: dict[str, int] = {}
    for pid in descendants(root):
        line = cmdline(pid)
        for role, marker in roles.items():
            if marker in line:
                found[role] = pid
    return found


async def wait_ready(stack: Stack) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    async with httpx.AsyncClient(timeout=2) as http:
        for path in ("/healthz", "/readyz"):
            while True:
                if stack.proc.returncode is not None:
                    pytest.fail(f"otp dev exited {stack.proc.returncode}:\n{stack.text()}")
                with suppress(httpx.HTTPError):
                    if (await http.get(stack.api + path)).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    pytest.fail(f"{path} not ready in {START_TIMEOUT_S} s:\n{stack.text()}")
                await asyncio.sleep(0.2)
    # The banner comes right after /healthz answers.
    while "Dev API key" not in stack.text():
        if time.monotonic() > deadline:
            pytest.fail(f"no banner:\n{stack.text()}")
        await asyncio.sleep(0.1)


async def wait_all_gone(pids: dict[str, int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids.values()):
        if time.monotonic() > deadline:
            left = {role: pid for role, pid in pids.items() if alive(pid)}
            pytest.fail(f"still running after {timeout} s: {left}")
        await asyncio.sleep(0.1)


def printed_key(text: str) -> str:
    match = re.search(r"Dev API key\s+(otp_test_\S+)", text)
    assert match, text
    return match.group(1)


async def test_dev_stack_starts_answers_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = stack_env(data_dir)
    async with otp_dev(env, tmp_path / "first.log") as stack:
        await wait_ready(stack)
        text = stack.text()
        key = printed_key(text)
        assert (data_dir / "dev_api_key").read_text().strip() == key
        assert text.count(key) == 2  # the key line and the curl example, printed once
        assert f"{stack.api}/docs" in text
        assert f"http://127.0.0.1:{env['OTP_TEMPORAL_UI_PORT']}" in text
        assert (data_dir / "temporal.db").exists()
        assert (data_dir / "secrets.json").exists()

        children = children_by_role(stack.proc.pid)
        assert set(children) == {"temporal", "worker", "api"}, children

        started = time.monotonic()
        stack.proc.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(stack.proc.wait(), STOP_TIMEOUT_S)
        await wait_all_gone(children, STOP_TIMEOUT_S - (time.monotonic() - started))
        assert code == 0, stack.text()
        assert "otp dev: stopped" in stack.text()

    # A restart reuses the data dir: same key, same Temporal database (search
    # attributes passed again on an existing database are fine). Then a child that
    # dies on its own takes the stack down with exit 1 and a message naming it.
    async with otp_dev(env, tmp_path / "second.log") as stack:
        await wait_ready(stack)
        assert printed_key(stack.text()) == key
        children = children_by_role(stack.proc.pid)
        os.kill(children["worker"], signal.SIGKILL)
        code = await asyncio.wait_for(stack.proc.wait(), STOP_TIMEOUT_S)
        await wait_all_gone(children, STOP_TIMEOUT_S)
        assert code == 1, stack.text()
        assert "the worker exited unexpectedly (killed by SIGKILL)" in stack.text()


async def test_dev_stack_names_a_port_that_is_taken(tmp_path: Path) -> None:
    env = stack_env(tmp_path / "data")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env["OTP_TEMPORAL_UI_PORT"] = str(taken.getsockname()[1])
        result = await run([PYTHON, "-m", "cli.main", "dev"], env=env, timeout=30)
    assert result.returncode == 1
    assert "already in use (OTP_TEMPORAL_UI_PORT)" in result.stderr


async def test_dev_stack_refuses_production(tmp_path: Path) -> None:
    env = stack_env(tmp_path / "data")
    env["OTP_ENV"] = "production"
    result = await run([PYTHON, "-m", "cli.main", "dev"], env=env, timeout=30)
    assert result.returncode == 1
    assert "OTP_ENV is 'production'" in result.stderr
