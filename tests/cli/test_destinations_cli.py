"""`otp destinations export|erase` in subprocesses, store only, on a temp SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

from otp.settings import Settings
from otp.store import Store
from otp.store.applications import ensure_default_application
from tests.helpers.cli import PYTHON, clean_env, run
from tests.otp.store.test_erasure import ERASED, KEPT, SECRET, _seed

OTP = [PYTHON, "-m", "cli.main", "destinations"]


async def test_export_then_erase_from_the_command_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    env = clean_env(OTP_DATA_DIR=str(data), OTP_CODE_SECRET=SECRET.decode())
    store = Store(Settings(data_dir=data).store_url)
    await store.migrate()
    await ensure_default_application(store)
    await _seed(store, "ver_cli1", ERASED, app="default")
    await _seed(store, "ver_cli2", KEPT, app="default")
    await store.close()
    where = ["--app", "default", "--to", ERASED, "--no-temporal"]

    exported = await run([*OTP, "export", *where], env=env)
    assert exported.returncode == 0, exported.stderr
    report = json.loads(exported.stdout)
    assert report["verification_ids"] == ["ver_cli1"] and report["to"] == "+1********71"
    assert report["tables"]["sandbox_messages"] == 1 and KEPT not in exported.stdout

    erased = await run([*OTP, "erase", *where, "--yes", "--json"], env=env)
    assert erased.returncode == 0, erased.stderr
    assert json.loads(erased.stdout)["tables"]["verification_events"] == 1
    again = json.loads((await run([*OTP, "export", *where], env=env)).stdout)
    assert again["verification_ids"] == [] and set(again["tables"].values()) == {0}
    kept = json.loads(
        (
            await run([*OTP, "export", "--app", "default", "--to", KEPT, "--no-temporal"], env=env)
        ).stdout
    )
    assert kept["verification_ids"] == ["ver_cli2"]

    bad = await run([*OTP, "erase", "--app", "default", "--to", "nope", "--yes"], env=env)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    unknown = await run(
        [*OTP, "export", "--app", "app_none", "--to", ERASED, "--no-temporal"], env=env
    )
    assert unknown.returncode != 0 and "no application" in unknown.stderr
    refused = await run([*OTP, "erase", *where], env=env)  # no --yes, no answer: nothing done
    assert refused.returncode != 0
