"""`otp sandbox scenarios` in subprocesses, against a fresh SQLite store in a temp data dir."""

from __future__ import annotations

import json

from tests.helpers.cli import Result
from tests.helpers.cli import otp as run_otp


async def otp(env: dict[str, str], *args: str) -> Result:
    return await run_otp(env, "sandbox", "scenarios", *args)


async def test_add_list_remove_and_refusals(otp_env: dict[str, str]) -> None:
    added = await otp(
        otp_env,
        "add",
        "provider_error",
        "--to",
        "+44 7400 123123",
        "--error-code",
        "21211",
        "--json",
    )
    assert added.returncode == 0, added.stderr
    scenario = json.loads(added.stdout)
    assert scenario["id"].startswith("sbs_") and scenario["to"] == "+44********23"
    hook = await otp(otp_env, "add", "webhook_failure", "--status-code", "503")
    assert hook.returncode == 0 and "webhook_failure" in hook.stdout, hook.stderr

    listing = await otp(otp_env, "list")
    assert listing.returncode == 0, listing.stderr
    assert scenario["id"] in listing.stdout and "21211" in listing.stdout
    assert "(all webhooks)" in listing.stdout and "503" in listing.stdout

    missing_code = await otp(otp_env, "add", "provider_error", "--country", "GB")
    assert missing_code.returncode == 2 and "error_code" in missing_code.stderr
    bad_kind = await otp(otp_env, "add", "teleport", "--country", "GB")
    assert bad_kind.returncode == 2 and "kind" in bad_kind.stderr

    removed = await otp(otp_env, "remove", scenario["id"])
    assert removed.returncode == 0 and scenario["id"] in removed.stdout, removed.stderr
    again = await otp(otp_env, "remove", scenario["id"])
    assert again.returncode == 1 and "No sandbox scenario" in again.stderr
    remaining = json.loads((await otp(otp_env, "list", "--json")).stdout)
    assert [s["kind"] for s in remaining] == ["webhook_failure"]
