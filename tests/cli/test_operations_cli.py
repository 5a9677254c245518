"""`otp replay` (the pre-deploy non-determinism check) and `otp verifications show`."""

from __future__ import annotations

import base64
import json
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from otp.domain import Channel, EventType, LogEntry, Mode, Status
from otp.settings import Settings
from otp.store import Store
from otp.store.events import EventRecorder
from tests.conftest import TEST_SECRETS, real_worker
from tests.helpers.cli import ROOT, clean_env, run
from tests.helpers.workflows import SCOPE, make_input, plan, wait_settled
from tests.otp.store.test_records import entries, state
from workflows.verification import VerificationWorkflow

OTP = str(Path(sys.executable).parent / "otp")
HISTORY = ROOT / "tests" / "histories" / "verification_fallback_approved.json"


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    (key_id, key), *_ = TEST_SECRETS.codec_keys.items()
    return clean_env(
        OTP_ENV="dev",
        OTP_DATA_DIR=str(data_dir),
        OTP_CODE_SECRET=TEST_SECRETS.code_secret.decode(),
        OTP_CODEC_KEYS=f"{key_id}:{base64.b64encode(key).decode()}",
        **extra,
    )


async def test_replay_of_the_committed_history_passes(tmp_path: Path) -> None:
    result = await run([OTP, "replay", "--file", str(HISTORY)], env=_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok")


def _incompatible_copy(into: Path) -> None:
    """The workflows package with a change that is not replay-safe (the delivery activity
    renamed): what a careless deploy would ship."""
    shutil.copytree(ROOT / "workflows", into / "workflows")
    module = into / "workflows" / "verification.py"
    source = module.read_text()
    changed = source.replace(
        "result = await workflow.execute_activity(\n                ACTIVITY_DELIVER,",
        'result = await workflow.execute_activity(\n                "deliver_v2",',
    )
    assert changed != source
    module.write_text(changed)


async def test_replay_fails_on_an_incompatible_change(tmp_path: Path) -> None:
    _incompatible_copy(tmp_path)
    env = _env(tmp_path / "data")
    env["PYTHONPATH"] = f"{tmp_path}:{env['PYTHONPATH']}"  # the changed code wins
    result = await run([OTP, "replay", "--file", str(HISTORY)], env=env, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith("broken"), result.stdout
    assert "0 replayed, 1 not" in result.stdout


async def test_replay_says_when_the_history_uses_keys_it_lacks(tmp_path: Path) -> None:
    env = _env(tmp_path)
    env["OTP_CODEC_KEYS"] = "other:" + base64.b64encode(b"o" * 32).decode()
    result = await run([OTP, "replay", "--file", str(HISTORY)], env=env)
    assert result.returncode == 1
    assert "unreadable" in result.stdout and "test1" in result.stdout


async def test_replay_from_the_cluster(
    dev_env: WorkflowEnvironment, settings: Settings, store: Store, tmp_path: Path
) -> None:
    async with real_worker(dev_env.client, settings, store):
        handle = await dev_env.client.start_workflow(
            VerificationWorkflow.run,
            make_input(plan((Channel.SMS, 30))),
            id=f"ver_replay{datetime.now(UTC):%H%M%S%f}",
            task_queue=settings.task_queue,
        )
        # Until its first delivery has run (a settled history). An update racing the
        # delivery's completion can be refused by the server (WorkflowNotReady).
        await wait_settled(handle)
        await handle.execute_update(VerificationWorkflow.cancel, SCOPE)
        assert (await handle.result()).status is Status.CANCELED
    target = dev_env.client.service_client.config.target_host
    result = await run(
        [OTP, "replay", "--workflow-id", handle.id],
        env=_env(tmp_path, OTP_TEMPORAL_ADDRESS=target),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok") and handle.id in result.stdout
    usage = await run([OTP, "replay"], env=_env(tmp_path))
    assert usage.returncode == 2


async def test_verifications_show_prints_the_timeline(tmp_path: Path) -> None:
    db = tmp_path / "otp.db"
    store = Store(f"sqlite+aiosqlite:///{db}")
    await store.migrate()
    created = datetime.now(UTC) - timedelta(minutes=5)
    terminal = LogEntry(
        key="terminal",
        type=EventType.APPROVED,
        occurred_at=created + timedelta(seconds=20),
        step_index=0,
        reason="the correct code was submitted",
    )
    await EventRecorder(store, TEST_SECRETS.code_secret).record_state(
        "ver_show1", state(created=created), entries(created, terminal), country="US", final=True
    )
    await store.close()
    env = _env(tmp_path, OTP_DATABASE_URL=f"sqlite+aiosqlite:///{db}")

    shown = await run([OTP, "verifications", "show", "ver_show1"], env=env)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("ver_show1  approved")
    assert any("+   20.000s  approved" in line for line in lines), shown.stdout
    assert "+1********00" in shown.stdout and "4155550100" not in shown.stdout

    as_json = await run([OTP, "verifications", "show", "ver_show1", "--json"], env=env)
    document = json.loads(as_json.stdout)
    assert document["verification"]["status"] == "approved"
    assert [e["type"] for e in document["events"]] == ["created", "send_attempted", "approved"]
    assert document["verification"]["mode"] == Mode.TEST.value

    missing = await run([OTP, "verifications", "show", "ver_nope"], env=env)
    assert missing.returncode == 1 and "no verification" in missing.stderr
