"""`otp ping` against a real dev server, many short-lived processes at a time.

Each process connects a temporalio client and exits: the pattern in which the
native runtime used to crash at interpreter exit. Every one must exit 0.
"""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment

from tests.helpers.cli import PYTHON, clean_env, free_port, run, run_batches

PING = [PYTHON, "-m", "cli.main", "ping", "--timeout", "20"]
RUNS = 24
BATCH = 8


def target_of(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


async def test_ping_exits_0_every_time(dev_env: WorkflowEnvironment) -> None:
    target = target_of(dev_env)
    results = await run_batches(
        [PING] * RUNS, batch=BATCH, env=clean_env(OTP_TEMPORAL_ADDRESS=target)
    )
    failures = [(i, r) for i, r in enumerate(results) if r.returncode != 0]
    assert not failures, "\n".join(
        f"run {i}: exit {r.returncode}\n{r.stderr[-2000:]}" for i, r in failures
    )
    assert all(f"Temporal at {target} is healthy" in r.stdout for r in results)


async def test_ping_host_and_port_settings(dev_env: WorkflowEnvironment) -> None:
    host, _, port = target_of(dev_env).rpartition(":")
    result = await run(
        [*PING, "--quiet"], env=clean_env(OTP_TEMPORAL_HOST=host, OTP_TEMPORAL_PORT=port)
    )
    assert (result.returncode, result.stdout) == (0, ""), result.stderr


async def test_ping_closed_port_exits_1_with_a_clear_message() -> None:
    target = f"127.0.0.1:{free_port()}"
    result = await run(
        [PYTHON, "-m", "cli.main", "ping", "--timeout", "5"],
        env=clean_env(OTP_TEMPORAL_ADDRESS=target),
    )
    assert result.returncode == 1
    assert f"Temporal is not reachable at {target}" in result.stderr
    assert "otp dev" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


async def test_unknown_command_is_a_usage_error() -> None:
    result = await run([PYTHON, "-m", "cli.main", "no-such-command"])
    assert result.returncode == 2
    assert "No such command" in result.stderr


async def test_temporal_setup_is_idempotent(dev_env: WorkflowEnvironment) -> None:
    # The dev server registered every attribute at start: nothing left to add.
    result = await run(
        [PYTHON, "-m", "cli.main", "temporal-setup"],
        env=clean_env(OTP_TEMPORAL_ADDRESS=target_of(dev_env)),
    )
    assert result.returncode == 0, result.stderr
    assert "already registered" in result.stdout
