"""Subprocess helpers for the command-line tests."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any OTP_* variable, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTP_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


async def run(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
) -> Result:
    proc = await asyncio.create_subprocess_exec(
        *args,
        env=dict(env) if env is not None else clean_env(),
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


async def run_batches(
    commands: Sequence[Sequence[str]], *, batch: int, env: Mapping[str, str], timeout: float = 60
) -> list[Result]:
    """Run commands `batch` at a time; results in the same order."""
    results: list[Result] = []
    for start in range(0, len(commands), batch):
        chunk = commands[start : start + batch]
        results += await asyncio.gather(*(run(c, env=env, timeout=timeout) for c in chunk))
    return results


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# The `otp` command, run the way the console script runs it.
OTP = [PYTHON, "-m", "cli.main"]


async def otp(env: Mapping[str, str], *args: str) -> Result:
    """`otp <args>` in a subprocess with `env`."""
    return await run([*OTP, *args], env=env)


def loaded(result: Result) -> Any:
    """The JSON a successful `--json` command printed."""
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
