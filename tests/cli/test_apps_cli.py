"""`otp apps` and `otp keys` in subprocesses, against a fresh SQLite store in a temp data dir."""

from __future__ import annotations

import json
import re
from pathlib import Path

from otp.applications.keys import hash_api_key
from otp.store import Store
from otp.store.applications import find_api_key
from tests.helpers.cli import clean_env, loaded, otp

KEY_RE = re.compile(r"\botp_(test|live)_[0-9A-Za-z]{43}\b")


async def test_apps_and_keys_round_trip(otp_env: dict[str, str], tmp_path: Path) -> None:
    created = loaded(
        await otp(
            otp_env,
            "apps",
            "create",
            "--name",
            "Web shop",
            "--brand",
            "Acme",
            "--defaults",
            '{"code_length": 8, "channels": [{"channel": "sms", "timeout_s": 30}]}',
            "--allowed-channels",
            "sms,email",
            "--json",
        )
    )
    app_id = created["id"]
    assert app_id.startswith("app_") and created["brand"] == "Acme"
    assert created["defaults"]["code_length"] == 8
    assert created["allowed_channels"] == ["sms", "email"]

    listing = await otp(otp_env, "apps", "list")
    assert listing.returncode == 0, listing.stderr
    assert app_id in listing.stdout and "Web shop" in listing.stdout
    assert "default" in listing.stdout  # the settings keys' application, always there
    ids = [a["id"] for a in loaded(await otp(otp_env, "apps", "list", "--json"))]
    assert ids == ["default", app_id]

    key_text = await otp(otp_env, "keys", "create", "--app", app_id, "--mode", "live")
    assert key_text.returncode == 0, key_text.stderr
    (raw,) = [m.group(0) for m in KEY_RE.finditer(key_text.stdout)]
    assert raw.startswith("otp_live_")
    assert "never shown again" in key_text.stdout
    key_json = loaded(
        await otp(otp_env, "keys", "create", "--app", app_id, "--mode", "test", "--json")
    )
    assert key_json["key"].startswith("otp_test_") and key_json["mode"] == "test"

    keys = loaded(await otp(otp_env, "keys", "list", "--app", app_id, "--json"))
    assert [k["mode"] for k in keys] == ["live", "test"]
    listed_text = await otp(otp_env, "keys", "list", "--app", app_id)
    for output in (json.dumps(keys), listed_text.stdout):
        assert raw not in output and key_json["key"] not in output
        assert hash_api_key(raw) not in output
    assert f"otp_live_…{raw[-4:]}" in listed_text.stdout

    show = loaded(await otp(otp_env, "apps", "show", app_id, "--json"))
    assert show["id"] == app_id and len(show["keys"]) == 2
    shown_text = await otp(otp_env, "apps", "show", app_id)
    assert "Acme" in shown_text.stdout and "active" in shown_text.stdout

    # The store the commands wrote is the one the API reads.
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'otp.db'}")
    try:
        found = await find_api_key(store, key_hash=hash_api_key(raw))
        assert found is not None and found.application.id == app_id
        revoked = loaded(await otp(otp_env, "keys", "revoke", keys[0]["id"], "--json"))
        assert revoked["revoked_at"] is not None
        assert await find_api_key(store, key_hash=hash_api_key(raw)) is None
    finally:
        await store.close()
    after = await otp(otp_env, "keys", "list", "--app", app_id)
    assert "revoked" in after.stdout


async def test_errors_exit_non_zero_with_a_message(otp_env: dict[str, str]) -> None:
    for args, code, message in (
        (["apps", "show", "app_" + "a" * 26], 1, "no application"),
        (["keys", "list", "--app", "app_nope"], 1, "no application"),
        (["keys", "create", "--app", "app_nope", "--mode", "test"], 1, "no application"),
        (["keys", "revoke", "key_" + "b" * 26], 1, "no key"),
        (["apps", "create", "--name", "x", "--defaults", '{"ttl_s": 1}'], 2, "invalid"),
        (["apps", "create", "--name", "x", "--allowed-channels", "fax"], 2, "invalid"),
        (["keys", "create", "--app", "default", "--mode", "prod"], 2, "prod"),
    ):
        result = await otp(otp_env, *args)
        assert result.returncode == code, (args, result.stdout, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


async def test_an_unreachable_store_is_reported_without_its_password(tmp_path: Path) -> None:
    env = clean_env(OTP_DATABASE_URL="postgresql+asyncpg://otp:s3cret@127.0.0.1:9/otp")
    result = await otp(env, "apps", "list")
    assert result.returncode == 1
    assert "the store at postgresql+asyncpg://otp:***@127.0.0.1:9/otp failed" in result.stderr
    assert "s3cret" not in result.stderr and "Traceback" not in result.stderr
