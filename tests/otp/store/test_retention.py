"""Every table's retention, enforced by one purge round (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import SQLModel, select

from otp.settings import Settings
from otp.store import Store, retention
from otp.store.tables import (
    AlertRecord,
    ConsoleAuditEntry,
    ConsoleSession,
    ConsoleUser,
    Counter,
    IdempotencyRecord,
    Lockout,
    RateHit,
    RiskBlock,
    SandboxMessage,
    VerificationRecord,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
)

NOW = datetime.now(UTC)
DAY = timedelta(days=1)


async def add(store: Store, *rows: SQLModel) -> None:
    async with store.write_guard(), store.session() as session:
        session.add_all(list(rows))
        await session.commit()


async def ids(store: Store, model: Any, column: str = "id") -> list[Any]:
    async with store.session() as session:
        rows = (await session.exec(select(model))).all()
    return sorted(getattr(row, column) for row in rows)


def verification(id: str, *, finished: datetime | None) -> VerificationRecord:
    return VerificationRecord(
        id=id,
        application_id="app_1",
        mode="test",
        status="approved" if finished else "pending",
        first_channel="sms",
        channel="sms",
        created_at=NOW - 10 * DAY,
        expires_at=NOW - 10 * DAY + timedelta(minutes=10),
        finished_at=finished,
    )


def sandbox(n: int, verification_id: str, age: timedelta) -> SandboxMessage:
    return SandboxMessage(
        message_id=f"msg_{n}",
        verification_id=verification_id,
        application_id="app_1",
        channel="sms",
        to="+14155550100",
        body="Your code is 123456.",
        idempotency_key=f"key_{n}",
        created_at=NOW - age,
    )


async def test_sandbox_messages_are_purged_after_their_hours(any_store: Store) -> None:
    await add(
        any_store,
        verification("ver_done", finished=NOW - 2 * DAY),
        verification("ver_open", finished=None),
        sandbox(1, "ver_done", timedelta(hours=25)),  # old: purged
        sandbox(2, "ver_done", timedelta(hours=1)),  # fresh: kept
        sandbox(3, "ver_open", timedelta(hours=25)),  # old, but its verification is pending
        sandbox(4, "ver_unknown", timedelta(hours=25)),  # old, no record: purged
    )
    counts = await retention.purge_all(any_store, Settings(), now=NOW)
    assert counts["sandbox_messages"] == 2
    assert await ids(any_store, SandboxMessage, "message_id") == ["msg_2", "msg_3"]
    # 0 keeps them forever.
    await add(any_store, sandbox(5, "ver_done", 400 * DAY))
    await retention.purge_all(any_store, Settings(sandbox_retention_hours=0), now=NOW)
    assert "msg_5" in await ids(any_store, SandboxMessage, "message_id")


def webhook(message_id: str, status: str, age: timedelta) -> list[SQLModel]:
    return [
        WebhookMessage(
            message_id=message_id,
            endpoint_id="ep_1",
            application_id="app_1",
            mode="test",
            event_type="verification.approved",
            status=status,
            attempts=2,
            created_at=NOW - age,
            updated_at=NOW - age,
        ),
        *(
            WebhookAttempt(
                message_id=message_id, endpoint_id="ep_1", attempt=n, attempted_at=NOW - age
            )
            for n in (1, 2)
        ),
    ]


async def test_webhook_messages_and_attempts_are_purged_after_their_final_state(
    any_store: Store,
) -> None:
    await add(
        any_store,
        *webhook("msg_old_ok", "succeeded", 31 * DAY),
        *webhook("msg_old_failed", "failed", 40 * DAY),
        *webhook("msg_new_ok", "succeeded", 2 * DAY),
        *webhook("msg_old_pending", "pending", 45 * DAY),  # still being retried: kept
        WebhookAttempt(  # an attempt whose message is gone
            message_id="msg_gone", endpoint_id="ep_1", attempt=1, attempted_at=NOW - 31 * DAY
        ),
    )
    counts = await retention.purge_all(any_store, Settings(), now=NOW)
    assert counts["webhooks"] == 2 + 2 * 2 + 1
    assert await ids(any_store, WebhookMessage, "message_id") == ["msg_new_ok", "msg_old_pending"]
    assert await ids(any_store, WebhookAttempt, "message_id") == [
        "msg_new_ok",
        "msg_new_ok",
        "msg_old_pending",
        "msg_old_pending",
    ]


def key(name: str, expires: datetime) -> IdempotencyRecord:
    return IdempotencyRecord(
        application_id="app_1",
        mode="test",
        scope="POST /v1/verifications",
        key=name,
        fingerprint="0" * 64,
        state="completed",
        locked_until=expires,
        expires_at=expires,
    )


async def test_idempotency_records_are_purged_at_their_expiry(any_store: Store) -> None:
    await add(any_store, key("expired", NOW - timedelta(seconds=1)), key("live", NOW + DAY))
    counts = await retention.purge_all(any_store, Settings(), now=NOW)
    assert counts["idempotency"] == 1
    assert await ids(any_store, IdempotencyRecord, "key") == ["live"]


def block(id: str, *, expires: datetime | None = None, lifted: datetime | None = None) -> RiskBlock:
    return RiskBlock(
        id=id,
        application_id="app_1",
        mode="test",
        scope="prefix",
        value="+1415555",
        reason="test",
        created_at=NOW - 200 * DAY,
        expires_at=expires,
        lifted_at=lifted,
    )


async def test_risk_blocks_are_purged_long_after_they_ended(any_store: Store) -> None:
    await add(
        any_store,
        block("blk_lifted_long_ago", lifted=NOW - 91 * DAY),
        block("blk_expired_long_ago", expires=NOW - 100 * DAY),
        block("blk_lifted_recently", expires=NOW - 100 * DAY, lifted=NOW - 10 * DAY),
        block("blk_expired_recently", expires=NOW - 10 * DAY),
        block("blk_until_lifted"),
        block("blk_in_force", expires=NOW + DAY),
    )
    counts = await retention.purge_all(any_store, Settings(), now=NOW)
    assert counts["risk_blocks"] == 2
    assert await ids(any_store, RiskBlock) == [
        "blk_expired_recently",
        "blk_in_force",
        "blk_lifted_recently",
        "blk_until_lifted",
    ]


async def test_rate_hits_and_counters_are_purged_once_no_window_counts_them(
    any_store: Store,
) -> None:
    now_s = NOW.timestamp()
    await add(
        any_store,
        RateHit(key="dst:old", at=now_s - 32 * 86_400),
        RateHit(key="dst:new", at=now_s - 60),
        Counter(key="fails:old", value=3, expires_at=now_s - 1),
        Counter(key="fails:new", value=1, expires_at=now_s + 600),
        Counter(key="fails:forever", value=1, expires_at=None),
    )
    counts = await retention.purge_all(any_store, Settings(), now=NOW)
    assert counts["rate_limits"] == 2
    assert await ids(any_store, RateHit, "key") == ["dst:new"]
    assert await ids(any_store, Counter, "key") == ["fails:forever", "fails:new"]


async def test_finished_verifications_follow_the_record_retention(any_store: Store) -> None:
    await add(
        any_store,
        verification("ver_old", finished=NOW - 91 * DAY),
        verification("ver_recent", finished=NOW - 2 * DAY),
        verification("ver_open", finished=None),
    )
    counts = await retention.purge_all(any_store, Settings(), now=NOW)
    assert counts["verifications"] == 1
    assert await ids(any_store, VerificationRecord) == ["ver_open", "ver_recent"]


async def test_a_failing_purge_does_not_stop_the_others(
    any_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(store: Store, settings: Settings, now: datetime) -> int:
        raise RuntimeError("+14155550100")  # never logged: only the class name is

    monkeypatch.setattr(retention, "PURGES", list(retention.PURGES))
    retention.register("broken", None, broken)
    retention.PURGES.insert(0, retention.PURGES.pop())  # runs first
    await add(any_store, key("expired", NOW - timedelta(seconds=1)))
    counts = await retention.purge_all(any_store, Settings(), now=NOW)
    assert "broken" not in counts
    assert counts["idempotency"] == 1


def test_every_table_has_a_purge_and_every_setting_exists() -> None:
    names = {p.name for p in retention.PURGES}
    assert names >= {
        "verifications",
        "rate_limits",
        "idempotency",
        "sandbox_messages",
        "webhooks",
        "risk_blocks",
    }
    for purge in retention.PURGES:
        assert purge.setting is None or purge.setting in Settings.model_fields


def test_retention_settings_defaults_and_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Settings()
    assert defaults.sandbox_retention_hours == 24
    assert defaults.webhook_retention_days == 30
    assert defaults.risk_block_retention_days == 90
    assert defaults.record_retention_days == 90
    for name in ("sandbox_retention_hours", "webhook_retention_days", "risk_block_retention_days"):
        assert Settings.model_fields[name].description
    monkeypatch.setenv("OTP_SANDBOX_RETENTION_HOURS", "2")
    monkeypatch.setenv("OTP_WEBHOOK_RETENTION_DAYS", "0")
    monkeypatch.setenv("OTP_RISK_BLOCK_RETENTION_DAYS", "365")
    configured = Settings()
    assert (
        configured.sandbox_retention_hours,
        configured.webhook_retention_days,
        configured.risk_block_retention_days,
    ) == (2, 0, 365)
    monkeypatch.setenv("OTP_SANDBOX_RETENTION_HOURS", "-1")
    with pytest.raises(ValueError):
        Settings()


# Tables whose rows live until an operator deletes them (configuration, not data about
# end users beyond keyed hashes): every other table must have a purge.
# Console users too: a disabled user keeps its row, the audit log names it.
KEPT_UNTIL_DELETED = {
    "applications",
    "api_keys",
    "webhook_endpoints",
    "safe_list",
    "console_users",
}
PURGED_BY = {
    "verifications": "verifications",
    "verification_events": "verifications",
    "verification_destinations": "verifications",
    "rate_hits": "rate_limits",
    "counters": "rate_limits",
    "idempotency_keys": "idempotency",
    "sandbox_messages": "sandbox_messages",
    "webhook_messages": "webhooks",
    "webhook_attempts": "webhooks",
    "risk_blocks": "risk_blocks",
    "lockouts": "lockouts",
    # Configuration kept while its application exists: the purge drops orphans only.
    "twilio_verify_services": "twilio_verify_services",
    "sandbox_scenarios": "sandbox_scenarios",
    "routing_rules": "routing_rules",
    "provider_accounts": "provider_accounts",
    "message_templates": "message_templates",
    "price_overrides": "price_overrides",
    # A delivery's cost goes with its verification.
    "delivery_costs": "verifications",
    "console_sessions": "console_sessions",
    "console_audit": "console_audit",
    "alerts": "alerts",
    "alert_rules": "alert_rules",
}


def test_every_table_is_purged_or_kept_on_purpose() -> None:
    """A new table fails here until its retention is decided."""
    assert set(SQLModel.metadata.tables) == set(PURGED_BY) | KEPT_UNTIL_DELETED
    assert set(PURGED_BY.values()) <= {p.name for p in retention.PURGES}


async def test_lockouts_are_purged_long_after_they_ended(any_store: Store) -> None:
    def lockout(id: str, *, until: datetime, lifted: datetime | None = None) -> Lockout:
        return Lockout(
            id=id,
            application_id="app_1",
            mode="test",
            destination_hash="h" * 64,
            to_masked="+1********00",
            since=until - DAY,
            until=until,
            lifted_at=lifted,
        )

    await add(
        any_store,
        lockout("lck_ended_long_ago", until=NOW - 91 * DAY),
        lockout("lck_lifted_long_ago", until=NOW + DAY, lifted=NOW - 91 * DAY),
        lockout("lck_ended_recently", until=NOW - 2 * DAY),
        lockout("lck_in_force", until=NOW + DAY),
    )
    counts = await retention.purge_all(any_store, Settings(), now=NOW)
    assert counts["lockouts"] == 2
    assert await ids(any_store, Lockout) == ["lck_ended_recently", "lck_in_force"]
    await add(any_store, lockout("lck_ended_long_ago", until=NOW - 91 * DAY))
    kept = await retention.purge_all(any_store, Settings(lockout_retention_days=0), now=NOW)
    assert kept["lockouts"] == 0


async def test_previous_webhook_secrets_are_dropped_after_their_grace(any_store: Store) -> None:
    def endpoint(id: str, expires: datetime | None) -> WebhookEndpoint:
        return WebhookEndpoint(
            id=id,
            application_id="app_1",
            mode="test",
            url="https://example.com/hook",
            secret_sealed="v2.k.current",
            previous_secret_sealed="v2.k.previous" if expires else None,
            previous_secret_expires_at=expires,
        )

    await add(
        any_store,
        endpoint("ep_expired", NOW - timedelta(minutes=1)),
        endpoint("ep_in_grace", NOW + timedelta(hours=1)),
        endpoint("ep_never_rotated", None),
    )
    counts = await retention.purge_all(any_store, Settings(), now=NOW)
    assert counts["webhook_secrets"] == 1
    async with any_store.session() as session:
        rows = {r.id: r for r in (await session.exec(select(WebhookEndpoint))).all()}
    assert rows["ep_expired"].previous_secret_sealed is None
    assert rows["ep_expired"].secret_sealed == "v2.k.current"
    assert rows["ep_in_grace"].previous_secret_sealed == "v2.k.previous"


async def test_routing_rules_are_kept_while_their_application_exists(any_store: Store) -> None:
    from otp.store import routing_rules
    from otp.store.applications import create_application

    app = await create_application(any_store, name="Routed")
    rule = await routing_rules.save_rule(
        any_store,
        application_id=app.id,
        channel="sms",
        country="GB",
        prefix="",
        providers=["twilio"],
        sender=None,
    )
    counts = await retention.purge_all(any_store, Settings(), now=NOW + 3650 * DAY)
    assert counts["routing_rules"] == 0
    kept = await routing_rules.list_rules(any_store, application_id=app.id)
    assert [r.id for r in kept] == [rule.id]


async def test_console_sessions_end_idle_or_expired_and_audit_follows_its_days(
    any_store: Store,
) -> None:
    user = ConsoleUser(id="usr_1", username="ops", role="admin", password_hash="x")
    await add(any_store, user)

    def session(id: str, *, seen: timedelta, expires: timedelta) -> ConsoleSession:
        return ConsoleSession(
            id=id,
            user_id="usr_1",
            csrf_token="t",
            created_at=NOW - seen,
            last_seen_at=NOW - seen,
            expires_at=NOW + expires,
        )

    await add(
        any_store,
        session("s_live", seen=timedelta(minutes=5), expires=DAY),  # kept
        session("s_idle", seen=timedelta(minutes=31), expires=DAY),  # idle past 30 min
        session("s_over", seen=timedelta(minutes=1), expires=-timedelta(seconds=1)),  # expired
        ConsoleAuditEntry(at=NOW - 366 * DAY, username="ops", action="old"),
        ConsoleAuditEntry(at=NOW - 364 * DAY, username="ops", action="recent"),
    )
    counts = await retention.purge_all(any_store, Settings(), now=NOW)
    assert counts["console_sessions"] == 2
    assert counts["console_audit"] == 1
    assert await ids(any_store, ConsoleSession) == ["s_live"]
    assert await ids(any_store, ConsoleAuditEntry, "action") == ["recent"]
    assert await ids(any_store, ConsoleUser) == ["usr_1"]
    forever = await retention.purge_all(
        any_store, Settings(console_audit_retention_days=0), now=NOW + 1000 * DAY
    )
    assert forever["console_audit"] == 0


def alert(id: str, *, resolved: datetime | None) -> AlertRecord:
    return AlertRecord(
        id=id,
        application_id="app_a",
        mode="live",
        rule="conversion",
        scope=f"all-{id}",
        state="firing" if resolved is None else "resolved",
        open_key=None if resolved else f"app_a:live:conversion:{id}",
        started_at=NOW - 400 * DAY,
        resolved_at=resolved,
    )


async def test_resolved_alerts_are_purged_after_their_days_and_firing_ones_kept(
    any_store: Store,
) -> None:
    await add(
        any_store,
        alert("alr_old", resolved=NOW - 181 * DAY),
        alert("alr_recent", resolved=NOW - 10 * DAY),
        alert("alr_firing", resolved=None),
    )
    counts = await retention.purge_all(any_store, Settings(), now=NOW)
    assert counts["alerts"] == 1
    assert await ids(any_store, AlertRecord) == ["alr_firing", "alr_recent"]
    assert (await retention.purge_all(any_store, Settings(alert_retention_days=0), now=NOW))[
        "alerts"
    ] == 0
