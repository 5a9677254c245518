"""`otp templates` in subprocesses, against a fresh SQLite store in a temp data dir."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.cli import loaded, otp


async def test_set_list_preview_delete(otp_env: dict[str, str], tmp_path: Path) -> None:
    where = ("--app", "default", "--channel", "sms", "--locale", "nl")
    saved = loaded(
        await otp(otp_env, "templates", "set", *where, "--text", "Code {code}", "--json")
    )
    assert saved["version"] == 1 and saved["sms"]["encoding"] == "GSM-7"
    listed = loaded(await otp(otp_env, "templates", "list", "--app", "default", "--json"))
    assert [(t["locale"], t["version"]) for t in listed] == [("nl", 1)]
    shown = loaded(await otp(otp_env, "templates", "preview", *where, "--code", "4242", "--json"))
    assert (shown["text"], shown["version"]) == ("Code 4242", 1)

    refused = await otp(otp_env, "templates", "set", *where, "--text", "Code {cod}")
    assert refused.returncode == 2
    assert "/text: unknown variable {cod}" in refused.stderr

    html = tmp_path / "mail.html"
    html.write_text("<p>{code}</p>", encoding="utf-8")
    email = await otp(
        otp_env,
        *("templates", "set", "--app", "default", "--channel", "email", "--locale", "en"),
        *("--text", "Use {code}", "--subject", "{brand} code", "--html-file", str(html)),
    )
    assert email.returncode == 0 and "version 2" in email.stdout, email.stderr

    deleted = await otp(otp_env, "templates", "delete", *where)
    assert deleted.returncode == 0, deleted.stderr
    again = await otp(otp_env, "templates", "delete", *where)
    assert again.returncode == 2 and "no active template" in again.stderr
    catalogue = loaded(await otp(otp_env, "templates", "preview", *where, "--json"))
    assert catalogue["source"] == "catalogue" and catalogue["text"].startswith("Je verificatiecode")
