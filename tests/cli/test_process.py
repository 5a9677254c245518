"""run_and_exit / exit_code_of: the exit code is the entry point's own, in a real process."""

from __future__ import annotations

import pytest

from tests.helpers.cli import PYTHON, Result, run

PROGRAM = """
import sys
from otp.process import run_and_exit

def main():
{body}

run_and_exit(main)
"""


async def run_entry_point(body: str) -> Result:
    source = PROGRAM.format(body="\n".join("    " + line for line in body.splitlines()))
    return await run([PYTHON, "-c", source])


@pytest.mark.parametrize(
    ("body", "code", "stderr_has"),
    [
        ("return None", 0, ""),
        ("return 0", 0, ""),
        ("print('done'); return 3", 3, ""),
        ("raise SystemExit(4)", 4, ""),
        ("raise SystemExit()", 0, ""),
        ("raise SystemExit('config is broken')", 1, "config is broken"),
        ("raise ValueError('boom')", 1, "ValueError: boom"),
        ("raise KeyboardInterrupt", 130, ""),
    ],
)
async def test_exit_code_is_the_entry_points(body: str, code: int, stderr_has: str) -> None:
    result = await run_entry_point(body)
    assert result.returncode == code, result.stderr
    assert stderr_has in result.stderr


async def test_output_is_flushed_before_the_hard_exit() -> None:
    result = await run_entry_point(
        "sys.stdout.write('no newline at the end')\n"
        "import logging; logging.basicConfig(); logging.getLogger('x').warning('logged')\n"
        "return 2"
    )
    assert result.returncode == 2
    assert result.stdout == "no newline at the end"
    assert "logged" in result.stderr


async def test_atexit_finalisation_is_skipped() -> None:
    # The native runtime's crash happens in finalisation; hard_exit never gets there.
    result = await run_entry_point(
        "import atexit; atexit.register(lambda: print('finalised'))\nreturn 0"
    )
    assert result.returncode == 0
    assert "finalised" not in result.stdout
