"""Retention: how long the store keeps each table's rows, enforced by the worker's purge.

One registry of purges (`PURGES`), one per table or family of tables, each with the
`Settings` field that sets its retention (None: fixed by the data itself, e.g. an expiry).
`purge_all` runs every one, logs what each deleted (counts only, never personal data)
and goes on when one fails. Another table registers one line:

    register("my_table", "my_table_retention_days", purge_my_table)

Rules: a retention of 0 keeps rows forever; nothing is purged that a verification still
in flight or a webhook message still being retried needs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, exists, or_
from sqlmodel import SQLModel

from otp.risk.limits import store as limits_store
from otp.risk.policy import LONGEST_RATE_WINDOW_S
from otp.settings import Settings
from otp.store import Store
from otp.store import alerts as store_alerts
from otp.store import console as store_console
from otp.store import idempotency as store_idempotency
from otp.store import lockouts as store_lockouts
from otp.store import records as store_records
from otp.store import webhooks as store_webhooks
from otp.store.tables import (
    AlertRulesRow,
    Application,
    MessageTemplate,
    PriceOverride,
    ProviderAccount,
    RiskBlock,
    RoutingRuleRow,
    SandboxMessage,
    SandboxScenarioRow,
    TwilioVerifyService,
    VerificationRecord,
    WebhookAttempt,
    WebhookMessage,
    utcnow,
)

logger = logging.getLogger("otp.retention")

PurgeFn = Callable[[Store, Settings, datetime], Awaitable[int]]


@dataclass(frozen=True)
class Purge:
    """One table's purge: its `name` in logs, the `Settings` field of its retention (None:
    fixed) and the function (store, settings, now) -> rows deleted."""

    name: str
    setting: str | None
    run: PurgeFn


PURGES: list[Purge] = []


def register(name: str, setting: str | None, run: PurgeFn) -> Purge:
    """Add (or replace, by name) a purge to the registry the worker runs."""
    purge = Purge(name, setting, run)
    PURGES[:] = [p for p in PURGES if p.name != name] + [purge]
    return purge


async def purge_all(
    store: Store, settings: Settings, *, now: datetime | None = None
) -> dict[str, int]:
    """Run every registered purge; rows deleted per purge (a failed one is left out)."""
    when = now or utcnow()
    counts: dict[str, int] = {}
    for purge in list(PURGES):
        try:
            deleted = await purge.run(store, settings, when)
        except Exception as exc:  # one failing purge does not stop the others
            logger.warning(
                "purge failed; retrying next round",
                extra={"purge": purge.name, "error": type(exc).__name__},
            )
            continue
        counts[purge.name] = deleted
        if deleted:
            logger.info("rows purged", extra={"purge": purge.name, "deleted": deleted})
    return counts


async def purge_periodically(store: Store, settings: Settings, every_s: float = 3600) -> None:
    """Run `purge_all` now and then every `every_s` seconds (the worker's housekeeping)."""
    while True:
        try:
            await purge_all(store, settings)
        except Exception:  # never ends the loop
            logger.warning("purge round failed; retrying next round", exc_info=True)
        await asyncio.sleep(every_s)


# ------------------------------------------------------------------ the purges
async def purge_verifications(store: Store, settings: Settings, now: datetime) -> int:
    """Finished verifications (and their events and destinations) older than
    `record_retention_days` after they finished; pending ones are never touched."""
    if settings.record_retention_days <= 0:
        return 0
    return await store_records.purge_finished(
        store, older_than=timedelta(days=settings.record_retention_days), now=now
    )


async def purge_rate_limits(store: Store, settings: Settings, now: datetime) -> int:
    """Rate-limit hits no window can count any more, and expired counters (store backend)."""
    if settings.limits_backend != "store":
        return 0  # Redis expires its own keys
    return await limits_store.purge(store, older_than_s=LONGEST_RATE_WINDOW_S, clock=now.timestamp)


async def purge_idempotency(store: Store, settings: Settings, now: datetime) -> int:
    """Idempotency records at their expiry."""
    return await store_idempotency.purge_expired(store, now=now)


async def purge_sandbox(store: Store, settings: Settings, now: datetime) -> int:
    """Sandbox messages (test codes and clear destinations) older than
    `sandbox_retention_hours`, except those of a verification still pending."""
    if settings.sandbox_retention_hours <= 0:
        return 0
    cutoff = now - timedelta(hours=settings.sandbox_retention_hours)
    m, v = SandboxMessage.__table__.c, VerificationRecord.__table__.c  # type: ignore[attr-defined]
    in_flight = exists().where(v.id == m.verification_id, v.finished_at.is_(None))
    async with store.writing() as conn:
        result = await conn.execute(
            delete(SandboxMessage.__table__).where(  # type: ignore[attr-defined]
                m.created_at < cutoff, ~in_flight
            )
        )
    return int(result.rowcount or 0)


async def purge_webhooks(store: Store, settings: Settings, now: datetime) -> int:
    """Webhook messages in a final state (succeeded, failed, disabled) last changed more
    than `webhook_retention_days` ago, with their attempts; attempts whose message is gone.
    A message still pending (being retried) keeps every attempt."""
    if settings.webhook_retention_days <= 0:
        return 0
    cutoff = now - timedelta(days=settings.webhook_retention_days)
    m, a = WebhookMessage.__table__.c, WebhookAttempt.__table__.c  # type: ignore[attr-defined]
    same = and_(m.message_id == a.message_id, m.endpoint_id == a.endpoint_id)
    final_and_old = and_(m.status != "pending", m.updated_at < cutoff)
    async with store.writing() as conn:
        attempts = await conn.execute(
            delete(WebhookAttempt.__table__).where(  # type: ignore[attr-defined]
                or_(
                    exists().where(same, final_and_old),
                    and_(a.attempted_at < cutoff, ~exists().where(same)),
                )
            )
        )
        messages = await conn.execute(
            delete(WebhookMessage.__table__).where(final_and_old)  # type: ignore[attr-defined]
        )
    return int(attempts.rowcount or 0) + int(messages.rowcount or 0)


async def purge_risk_blocks(store: Store, settings: Settings, now: datetime) -> int:
    """Risk blocks lifted, or expired, more than `risk_block_retention_days` ago; blocks
    in force (or until lifted) are kept."""
    if settings.risk_block_retention_days <= 0:
        return 0
    cutoff = now - timedelta(days=settings.risk_block_retention_days)
    b = RiskBlock.__table__.c  # type: ignore[attr-defined]
    ended_long_ago = or_(
        and_(b.lifted_at.is_not(None), b.lifted_at < cutoff),
        and_(b.lifted_at.is_(None), b.expires_at.is_not(None), b.expires_at < cutoff),
    )
    async with store.writing() as conn:
        result = await conn.execute(
            delete(RiskBlock.__table__).where(ended_long_ago)  # type: ignore[attr-defined]
        )
    return int(result.rowcount or 0)


async def purge_lockouts(store: Store, settings: Settings, now: datetime) -> int:
    """Lockout rows that ended (expired or lifted) more than `lockout_retention_days` ago."""
    if settings.lockout_retention_days <= 0:
        return 0
    return await store_lockouts.purge_expired_lockouts(
        store, older_than=timedelta(days=settings.lockout_retention_days), now=now
    )


async def purge_webhook_secrets(store: Store, settings: Settings, now: datetime) -> int:
    """Previous webhook signing secrets whose rotation grace period has ended."""
    return await store_webhooks.purge_expired_webhook_secrets(store, now=now)


async def purge_console_sessions(store: Store, settings: Settings, now: datetime) -> int:
    """Console sessions past their expiry or idle longer than the idle timeout (they
    can no longer sign anyone in)."""
    return await store_console.purge_sessions(
        store, idle=timedelta(minutes=settings.console_session_idle_minutes), now=now
    )


async def purge_console_audit(store: Store, settings: Settings, now: datetime) -> int:
    """Console audit entries older than `console_audit_retention_days`."""
    if settings.console_audit_retention_days <= 0:
        return 0
    return await store_console.purge_audit(
        store, older_than=timedelta(days=settings.console_audit_retention_days), now=now
    )


async def purge_alerts(store: Store, settings: Settings, now: datetime) -> int:
    """Alerts resolved more than `alert_retention_days` ago; firing ones are kept."""
    if settings.alert_retention_days <= 0:
        return 0
    return await store_alerts.purge_resolved(
        store, older_than=timedelta(days=settings.alert_retention_days), now=now
    )


def purge_orphans_of(model: type[SQLModel]) -> PurgeFn:
    """The purge of a configuration table kept while its application exists: the rows of an
    application that is gone are deleted."""

    async def purge(store: Store, settings: Settings, now: datetime) -> int:
        t, a = model.__table__.c, Application.__table__.c  # type: ignore[attr-defined]
        async with store.writing() as conn:
            result = await conn.execute(
                delete(model.__table__).where(  # type: ignore[attr-defined]
                    ~exists().where(a.id == t.application_id)
                )
            )
        return int(result.rowcount or 0)

    purge.__name__ = f"purge_orphan_{model.__tablename__}"
    return purge


register("verifications", "record_retention_days", purge_verifications)
register("rate_limits", None, purge_rate_limits)
register("idempotency", None, purge_idempotency)
register("sandbox_messages", "sandbox_retention_hours", purge_sandbox)
register("webhooks", "webhook_retention_days", purge_webhooks)
register("risk_blocks", "risk_block_retention_days", purge_risk_blocks)
register("lockouts", "lockout_retention_days", purge_lockouts)
register("webhook_secrets", None, purge_webhook_secrets)
register("twilio_verify_services", None, purge_orphans_of(TwilioVerifyService))
register("sandbox_scenarios", None, purge_orphans_of(SandboxScenarioRow))
register("routing_rules", None, purge_orphans_of(RoutingRuleRow))
register("provider_accounts", None, purge_orphans_of(ProviderAccount))
register("message_templates", None, purge_orphans_of(MessageTemplate))
register("price_overrides", None, purge_orphans_of(PriceOverride))
register("console_sessions", None, purge_console_sessions)
register("console_audit", "console_audit_retention_days", purge_console_audit)
register("alerts", "alert_retention_days", purge_alerts)
register("alert_rules", None, purge_orphans_of(AlertRulesRow))

__all__ = ["PURGES", "Purge", "purge_all", "purge_periodically", "register"]
