"""pytest's exit code survives the temporalio runtime's shutdown, unchanged.

Runs pytest in subprocesses on generated files with the exit guard plugin loaded
(the same one tests/conftest.py loads): a passing test that uses a temporalio
client exits 0 every time; a failing one exits 1; no tests exits 5.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from tests.helpers.cli import PYTHON, Result, clean_env, run, run_batches

INI = """[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
"""

CLIENT_TEST = """
import os
from temporalio.client import Client


async def test_client_is_healthy():
    client = await Client.connect(os.environ["PROBE_TARGET"])
    assert await client.service_client.check_health()
    assert {expect_pass}
"""


def pytest_command(directory: Path) -> list[str]:
    return [
        PYTHON,
        "-m",
        "pytest",
        "-p",
        "tests.plugins.exit_guard",
        "-p",
        "no:cacheprovider",
        "-c",
        str(directory / "pytest.ini"),
        "--rootdir",
        str(directory),
        str(directory),
    ]


def write_suite(directory: Path, *, passing: bool) -> Path:
    directory.mkdir()
    (directory / "pytest.ini").write_text(INI)
    (directory / "test_probe.py").write_text(CLIENT_TEST.format(expect_pass=passing))
    return directory


def describe(result: Result) -> str:
    return f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


async def test_passing_suite_with_a_client_exits_0_every_time(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    suite = write_suite(tmp_path / "passing", passing=True)
    env = clean_env(PROBE_TARGET=dev_env.client.service_client.config.target_host)
    results = await run_batches([pytest_command(suite)] * 6, batch=3, env=env)
    for result in results:
        assert result.returncode == 0, describe(result)
        assert "1 passed" in result.stdout


async def test_failing_suite_exits_1(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "failing", passing=False)
    env = clean_env(PROBE_TARGET=dev_env.client.service_client.config.target_host)
    result = await run(pytest_command(suite), env=env)
    assert result.returncode == 1, describe(result)
    assert "1 failed" in result.stdout


async def test_no_tests_exits_5(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "pytest.ini").write_text(INI)
    result = await run(pytest_command(empty))
    assert result.returncode == 5, describe(result)
    assert "no tests ran" in result.stdout


CRASH_AT_EXIT = """
import atexit
import os

# Stands in for the native runtime's abort during interpreter finalisation.
atexit.register(lambda: os._exit(134))


def test_passes():
    assert True
"""


async def test_a_crash_at_interpreter_exit_cannot_fail_a_green_run(tmp_path: Path) -> None:
    suite = tmp_path / "crashing"
    suite.mkdir()
    (suite / "pytest.ini").write_text(INI)
    (suite / "test_crash.py").write_text(CRASH_AT_EXIT)
    guarded, unguarded = await asyncio.gather(
        run(pytest_command(suite)),
        run(pytest_command(suite), env=clean_env(OTP_NO_EXIT_GUARD="1")),
    )
    assert guarded.returncode == 0, describe(guarded)
    assert "1 passed" in guarded.stdout
    # With the guard turned off (OTP_NO_EXIT_GUARD=1) the simulated crash shows through.
    assert unguarded.returncode == 134, describe(unguarded)
