"""`otp prices` in subprocesses, against a fresh SQLite store in a temp data dir."""

from __future__ import annotations

from tests.helpers.cli import loaded, otp

QUOTE = ("prices", "quote", "--app", "default", "--to", "+14155550123", "--channel", "sms")


async def test_set_quote_list_remove(otp_env: dict[str, str]) -> None:
    table = loaded(await otp(otp_env, *QUOTE, "--provider", "twilio", "--json"))
    assert (table["source"], table["estimate"]) == ("table", "0.0083")

    route = ("--app", "default", "--provider", "twilio", "--channel", "sms", "--country", "US")
    saved = await otp(otp_env, "prices", "set", *route, "--price", "0.005", "--note", "contract")
    assert saved.returncode == 0, saved.stderr
    assert "0.005 USD per segment" in saved.stdout
    own = loaded(await otp(otp_env, *QUOTE, "--provider", "twilio", "--segments", "2", "--json"))
    assert (own["source"], own["estimate"]) == ("override", "0.01")
    listed = await otp(otp_env, "prices", "list", "--app", "default", "--country", "US")
    assert "override" in listed.stdout and "table (overridden)" in listed.stdout

    refused = await otp(otp_env, "prices", "set", *route, "--price", "-1")
    assert refused.returncode == 2 and "/price" in refused.stderr
    removed = await otp(otp_env, "prices", "remove", *route)
    assert removed.returncode == 0, removed.stderr
    again = await otp(otp_env, "prices", "remove", *route)
    assert again.returncode == 2
