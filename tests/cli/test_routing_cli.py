"""`otp routing add|list|explain|remove` in subprocesses, against a fresh SQLite store."""

from __future__ import annotations

from tests.helpers.cli import loaded, otp


async def test_add_list_explain_refuse_remove(otp_env: dict[str, str]) -> None:
    app_id = loaded(await otp(otp_env, "apps", "create", "--name", "Shop", "--json"))["id"]
    added = loaded(
        await otp(
            otp_env,
            "routing",
            "add",
            "--app",
            app_id,
            "--country",
            "GB",
            "--providers",
            "twilio",
            "--sender-type",
            "alphanumeric",
            "--sender",
            "ACME",
            "--json",
        )
    )
    assert added["id"].startswith("rte_")
    assert added["sender"] == {"type": "alphanumeric", "value": "ACME"}

    refused = await otp(
        otp_env,
        "routing",
        "add",
        "--app",
        app_id,
        "--country",
        "US",
        "--sender-type",
        "alphanumeric",
        "--sender",
        "ACME",
    )
    assert refused.returncode == 1
    assert "US" in refused.stderr and "guidelines/us/sms" in refused.stderr

    listing = await otp(otp_env, "routing", "list", "--app", app_id)
    assert listing.returncode == 0, listing.stderr
    assert added["id"] in listing.stdout and "alphanumeric:ACME" in listing.stdout
    assert "US" not in listing.stdout

    explained = loaded(
        await otp(otp_env, "routing", "explain", "--app", app_id, "--to", "+447400123456", "--json")
    )
    assert (explained["match"], explained["rule_id"]) == ("country", added["id"])

    removed = await otp(otp_env, "routing", "remove", "--app", app_id, added["id"])
    assert removed.returncode == 0, removed.stderr
    assert loaded(await otp(otp_env, "routing", "list", "--app", app_id, "--json")) == []
    gone = await otp(otp_env, "routing", "remove", "--app", app_id, added["id"])
    assert gone.returncode == 1 and "No routing rule" in gone.stderr
