"""`otp risk` in subprocesses, against a fresh SQLite store in a temp data dir."""

from __future__ import annotations

from pathlib import Path

from otp.domain import Mode
from tests.helpers.cli import loaded, otp


async def test_block_list_and_lift(otp_env: dict[str, str]) -> None:
    block = loaded(
        await otp(
            otp_env,
            *("risk", "block", "--app", "default", "--mode", "live", "--scope", "prefix"),
            *("--value", "+1 415 555", "--reason", "pumping seen", "--duration", "6h", "--json"),
        )
    )
    assert block["id"].startswith("blk_") and block["value"] == "+1415555"
    assert not block["automatic"] and block["expires_at"] is not None
    country = await otp(
        otp_env,
        "risk",
        "block",
        "--app",
        "default",
        "--mode",
        "test",
        "--scope",
        "country",
        "--value",
        "gb",
    )
    assert country.returncode == 0, country.stderr
    assert "Blocked country GB for default (test) until lifted" in country.stdout

    listing = await otp(otp_env, "risk", "blocks", "--app", "default")
    assert listing.returncode == 0, listing.stderr
    assert block["id"] in listing.stdout and "+1415555" in listing.stdout
    assert "GB" in listing.stdout and "pumping seen" in listing.stdout
    live = loaded(
        await otp(otp_env, "risk", "blocks", "--app", "default", "--mode", "live", "--json")
    )
    assert [b["id"] for b in live] == [block["id"]]

    lifted = loaded(await otp(otp_env, "risk", "lift", block["id"], "--by", "ops", "--json"))
    assert lifted["lifted_by"] == "ops" and lifted["lifted_at"] is not None
    listing = await otp(otp_env, "risk", "blocks", "--app", "default", "--mode", "live")
    assert "lifted" in listing.stdout and "by ops" in listing.stdout


async def test_refusals(otp_env: dict[str, str]) -> None:
    bad_value = await otp(
        otp_env,
        "risk",
        "block",
        "--app",
        "default",
        "--mode",
        "live",
        "--scope",
        "country",
        "--value",
        "USA",
    )
    assert bad_value.returncode == 2 and "two letters" in bad_value.stderr
    bad_duration = await otp(
        otp_env,
        "risk",
        "block",
        "--app",
        "default",
        "--mode",
        "live",
        "--scope",
        "country",
        "--value",
        "US",
        "--duration",
        "soon",
    )
    assert bad_duration.returncode == 2
    no_app = await otp(
        otp_env,
        "risk",
        "block",
        "--app",
        "app_nope",
        "--mode",
        "live",
        "--scope",
        "country",
        "--value",
        "US",
    )
    assert no_app.returncode == 1 and "no application" in no_app.stderr
    missing = await otp(otp_env, "risk", "lift", "blk_missing")
    assert missing.returncode == 1 and "no risk block" in missing.stderr
    empty = await otp(otp_env, "risk", "blocks", "--app", "default")
    assert empty.returncode == 0 and "No risk blocks" in empty.stdout


async def test_lockouts_unlock_and_the_safe_list(otp_env: dict[str, str], tmp_path: Path) -> None:
    from otp.risk.limits.store import StoreLimiter
    from otp.risk.policy import failed_checks_key
    from otp.settings import Settings, load_secrets
    from otp.store import Store
    from otp.store.events import destination_hash
    from otp.store.lockouts import record_lockout

    to = "+14155550199"
    entry = loaded(
        await otp(
            otp_env,
            *("risk", "safe-list", "add", "--app", "default", "--to", "+1 415 555 0199"),
            *("--mode", "live", "--note", "QA", "--by", "alice", "--json"),
        )
    )
    assert entry["id"].startswith("sfl_") and entry["to"] == "+1********99"
    assert entry["added_by"] == "alice" and entry["active"] and "destination_hash" not in entry
    listing = await otp(otp_env, "risk", "safe-list", "list", "--app", "default")
    assert listing.returncode == 0, listing.stderr
    assert entry["id"] in listing.stdout and to not in listing.stdout
    removed = loaded(
        await otp(
            otp_env,
            *("risk", "safe-list", "remove", entry["id"], "--app", "default", "--by", "bob"),
            "--json",
        )
    )
    assert removed["removed_by"] == "bob" and not removed["active"]
    assert (
        loaded(await otp(otp_env, "risk", "safe-list", "list", "--app", "default", "--json")) == []
    )
    audit = loaded(
        await otp(otp_env, "risk", "safe-list", "list", "--app", "default", "--all", "--json")
    )
    assert [e["id"] for e in audit] == [entry["id"]]
    bad = await otp(
        otp_env, "risk", "safe-list", "add", "--app", "default", "--to", "x", "--mode", "test"
    )
    assert bad.returncode == 2 and "invalid --to" in bad.stderr

    # A lockout as the check route leaves it: the counter at the cap, and its row.
    settings = Settings(data_dir=tmp_path / "data")
    store = Store(settings.store_url)
    try:
        dst = destination_hash(load_secrets(settings).code_secret, to)
        key = failed_checks_key("default", Mode.TEST, dst)
        limiter = StoreLimiter(store)
        lockout = await record_lockout(
            store,
            application_id="default",
            mode="test",
            destination_hash=dst,
            to_masked="+1********99",
            channel="sms",
            failed_count=100,
            duration_s=3600,
        )
        for _ in range(100):  # the default application's cap
            await limiter.incr(key)
    finally:
        await store.close()
    shown = loaded(await otp(otp_env, "risk", "lockouts", "--app", "default", "--json"))
    assert [(x["id"], x["to"]) for x in shown] == [(lockout.id, "+1********99")]
    assert "destination_hash" not in shown[0]
    unlocked = await otp(otp_env, "risk", "unlock", "--app", "default", "--to", to)
    assert unlocked.returncode == 0, unlocked.stderr
    assert "Unlocked +1********99 for default (test)" in unlocked.stdout
    assert loaded(await otp(otp_env, "risk", "lockouts", "--app", "default", "--json")) == []
    again = await otp(otp_env, "risk", "unlock", "--app", "default", "--to", to)
    assert again.returncode == 1 and "is not locked out" in again.stderr
