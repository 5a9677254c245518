"""`otp accounts` in subprocesses, against a fresh SQLite store in a temp data dir."""

from __future__ import annotations

import json

from tests.helpers.cli import Result
from tests.helpers.cli import otp as run_otp

TOKEN = "cli-own-auth-token-0123456789"


async def otp(env: dict[str, str], *args: str) -> Result:
    return await run_otp(env, "accounts", *args)


async def test_set_list_replace_and_remove_without_showing_the_secret(
    otp_env: dict[str, str],
) -> None:
    twilio = ("--app", "default", "--provider", "twilio")
    fields = ("--field", "account_sid=AC" + "3" * 32, "--field", "sms_from=+15005550006")
    created = await otp(otp_env, "set", *twilio, *fields, "--field", f"auth_token={TOKEN}")
    assert created.returncode == 0, created.stderr
    assert "Created the twilio account pa_" in created.stdout
    assert TOKEN not in created.stdout

    listing = await otp(otp_env, "list", "--app", "default", "--json")
    assert listing.returncode == 0, listing.stderr
    (account,) = json.loads(listing.stdout)
    assert account["secrets"] == {"auth_token": {"set": True, "hint": "…" + TOKEN[-4:]}}
    assert TOKEN not in listing.stdout
    table = await otp(otp_env, "list", "--app", "default")
    assert "twilio" in table.stdout and account["id"] in table.stdout

    replaced = await otp(
        otp_env, "set", *twilio, *fields, "--field", "auth_token=other-token", "--json"
    )
    assert replaced.returncode == 0, replaced.stderr
    assert json.loads(replaced.stdout)["version"] == 2

    removed = await otp(otp_env, "remove", *twilio)
    assert removed.returncode == 0, removed.stderr
    empty = await otp(otp_env, "list", "--app", "default")
    assert "no provider account of its own" in empty.stdout


async def test_bad_fields_and_unknown_names_are_refused(otp_env: dict[str, str]) -> None:
    twilio = ("--app", "default", "--provider", "twilio")
    unknown = await otp(otp_env, "set", *twilio, "--field", "colour=red")
    assert unknown.returncode == 2 and "colour" in unknown.stderr
    # `-` reads the secret from stdin: empty here, so the account has no credential.
    no_token = await otp(
        otp_env, "set", *twilio, "--field", "account_sid=AC" + "3" * 32, "--field", "auth_token=-"
    )
    assert no_token.returncode == 2 and "auth_token" in no_token.stderr
    provider = await otp(
        otp_env, "set", "--app", "default", "--provider", "nexmo", "--field", "a=b"
    )
    assert provider.returncode == 2
    missing = await otp(otp_env, "remove", *twilio)
    assert missing.returncode == 1 and "no account" in missing.stderr
    app = await otp(otp_env, "list", "--app", "app_nope")
    assert app.returncode == 1
