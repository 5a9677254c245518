"""`otp alerts` in subprocesses, against a fresh SQLite store in a temp data dir."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers.cli import loaded, otp


async def test_rules_round_trip_and_bad_rules_refused(
    otp_env: dict[str, str], tmp_path: Path
) -> None:
    rules = loaded(await otp(otp_env, "alerts", "rules", "--app", "default"))
    assert rules["conversion"]["threshold"] == 0.5
    rules["conversion"]["threshold"] = 0.7
    rules["email_to"] = ["ops@acme.test"]
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules), encoding="utf-8")
    done = await otp(otp_env, "alerts", "set-rules", "--app", "default", "--file", str(path))
    assert done.returncode == 0, done.stderr
    again = loaded(await otp(otp_env, "alerts", "rules", "--app", "default"))
    assert again["conversion"]["threshold"] == 0.7 and again["email_to"] == ["ops@acme.test"]

    path.write_text(json.dumps({"spend": {"levels": [0]}}), encoding="utf-8")
    refused = await otp(otp_env, "alerts", "set-rules", "--app", "default", "--file", str(path))
    assert refused.returncode == 2 and "spend.levels" in refused.stderr
    kept = loaded(await otp(otp_env, "alerts", "rules", "--app", "default"))
    assert kept["conversion"]["threshold"] == 0.7

    listed = await otp(otp_env, "alerts", "list", "--app", "default")
    assert listed.returncode == 0 and "no alerts" in listed.stdout
