"""Alerts in the store: applications' rules, alert episodes, and the figures rules judge.

Keyword-only functions, every query scoped by application (and mode where given).

- Rules: one `alert_rules` row per application; none means `AlertRules()`.
- Episodes: `open_alert` inserts a firing alert unless one is open for the same rule and
  scope (the unique `open_key` decides, so two evaluations racing open one episode);
  `resolve_alert` closes it and clears the key, so the next condition opens a new one.
- Figures (`figures`): conversion from `verifications` created over the window but not in
  the last `grace_s` (those may still be approved; verifications refused as `blocked`
  sent nothing and are left out), per country and per first channel too; send tries per
  provider from `verification_events` (`sent` accepted, `failed`, `send_error`); lockouts
  and automatic risk blocks started over their windows; disabled webhook endpoints; and
  the spend caps' current totals from the limiter.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from otp.alerts.evaluate import Conversion, Figures, ProviderTries, Spend
from otp.alerts.rules import AlertRules
from otp.cost.caps import CapName, SpendCaps, budget_key, period_of, refusals_key
from otp.domain import EventType, Mode
from otp.domain.ids import random_id
from otp.risk.limits import Limiter
from otp.store import Store
from otp.store.tables import (
    AlertRecord,
    AlertRulesRow,
    Application,
    Lockout,
    RiskBlock,
    VerificationEvent,
    VerificationRecord,
    WebhookEndpoint,
    utcnow,
)

FIRING = "firing"
RESOLVED = "resolved"
ALERT_ID_PREFIX = "alr_"


def new_alert_id() -> str:
    """`alr_` + 24 random base32 characters."""
    return random_id(ALERT_ID_PREFIX, random_bytes=15)


def open_key(application_id: str, mode: str, rule: str, scope: str) -> str:
    return f"{application_id}:{mode}:{rule}:{scope}"


# ----------------------------------------------------------------------- rules
async def get_rules(store: Store, *, application_id: str) -> AlertRules:
    """The application's rules (the defaults when it has stored none)."""
    async with store.session() as session:
        row = await session.get(AlertRulesRow, application_id)
    return AlertRules() if row is None else AlertRules.model_validate(row.rules)


async def put_rules(store: Store, *, application_id: str, rules: AlertRules) -> AlertRules:
    """Replace the application's rules."""
    async with store.write_guard(), store.session() as session:
        row = await session.get(AlertRulesRow, application_id)
        data = rules.model_dump(mode="json")
        if row is None:
            session.add(AlertRulesRow(application_id=application_id, rules=data))
        else:
            row.rules = data
            row.updated_at = utcnow()
            session.add(row)
        await session.commit()
    return rules


# -------------------------------------------------------------------- episodes
async def open_alerts(store: Store, *, application_id: str, mode: str) -> list[AlertRecord]:
    query = select(AlertRecord).where(
        col(AlertRecord.application_id) == application_id,
        col(AlertRecord.mode) == mode,
        col(AlertRecord.state) == FIRING,
    )
    async with store.session() as session:
        return list((await session.exec(query)).all())


async def open_alert(
    store: Store,
    *,
    application_id: str,
    mode: str,
    rule: str,
    scope: str,
    evidence: dict[str, Any],
    now: datetime | None = None,
) -> AlertRecord | None:
    """A new firing alert; None when one is already open for this rule and scope."""
    when = now or utcnow()
    row = AlertRecord(
        id=new_alert_id(),
        application_id=application_id,
        mode=mode,
        rule=rule,
        scope=scope[:120],
        state=FIRING,
        open_key=open_key(application_id, mode, rule, scope),
        started_at=when,
        evidence=evidence,
        updated_at=when,
    )
    try:
        async with store.write_guard(), store.session() as session:
            session.add(row)
            await session.commit()
    except IntegrityError:
        return None
    return row


async def resolve_alert(
    store: Store, *, alert_id: str, evidence: dict[str, Any], now: datetime | None = None
) -> AlertRecord | None:
    """Resolve a firing alert; None when it was not firing (already resolved)."""
    when = now or utcnow()
    async with store.writing() as conn:
        result = await conn.execute(
            update(AlertRecord.__table__)  # type: ignore[attr-defined]
            .where(col(AlertRecord.id) == alert_id, col(AlertRecord.state) == FIRING)
            .values(
                state=RESOLVED,
                open_key=None,
                resolved_at=when,
                resolved_evidence=evidence,
                updated_at=when,
            )
        )
    if not result.rowcount:
        return None
    return await get_alert(store, alert_id=alert_id)


async def unnotified(store: Store, *, application_id: str, mode: str) -> list[AlertRecord]:
    """Alerts whose trigger or resolve was not notified yet (oldest first)."""
    query = (
        select(AlertRecord)
        .where(
            col(AlertRecord.application_id) == application_id,
            col(AlertRecord.mode) == mode,
            (col(AlertRecord.triggered_notified).is_(False))
            | (
                (col(AlertRecord.state) == RESOLVED) & col(AlertRecord.resolved_notified).is_(False)
            ),
        )
        .order_by(col(AlertRecord.started_at), col(AlertRecord.id))
    )
    async with store.session() as session:
        return list((await session.exec(query)).all())


async def mark_notified(
    store: Store, *, alert_id: str, transition: str, outcome: dict[str, Any]
) -> None:
    """Note that `transition` (`triggered` | `resolved`) was notified, and what it reached."""
    async with store.write_guard(), store.session() as session:
        row = await session.get(AlertRecord, alert_id)
        if row is None:
            return
        row.deliveries = {**row.deliveries, transition: outcome}
        if transition == "triggered":
            row.triggered_notified = True
        else:
            row.resolved_notified = True
        row.updated_at = utcnow()
        session.add(row)
        await session.commit()


async def get_alert(
    store: Store, *, alert_id: str, application_id: str | None = None
) -> AlertRecord | None:
    async with store.session() as session:
        row = await session.get(AlertRecord, alert_id)
    if row is None or (application_id is not None and row.application_id != application_id):
        return None
    return row


async def list_alerts(
    store: Store,
    *,
    application_id: str,
    mode: str | None = None,
    state: str | None = None,
    limit: int = 100,
    before: datetime | None = None,
) -> list[AlertRecord]:
    """Newest first; `before` pages on from the previous page's last `started_at`."""
    query = select(AlertRecord).where(col(AlertRecord.application_id) == application_id)
    if mode is not None:
        query = query.where(col(AlertRecord.mode) == mode)
    if state is not None:
        query = query.where(col(AlertRecord.state) == state)
    if before is not None:
        query = query.where(col(AlertRecord.started_at) < before)
    query = query.order_by(col(AlertRecord.started_at).desc(), col(AlertRecord.id)).limit(limit)
    async with store.session() as session:
        return list((await session.exec(query)).all())


async def purge_resolved(store: Store, *, older_than: timedelta, now: datetime) -> int:
    """Resolved alerts that resolved more than `older_than` ago (firing ones are kept)."""
    async with store.writing() as conn:
        result = await conn.execute(
            delete(AlertRecord.__table__).where(  # type: ignore[attr-defined]
                col(AlertRecord.state) == RESOLVED,
                col(AlertRecord.resolved_at) < now - older_than,
            )
        )
    return int(result.rowcount or 0)


# --------------------------------------------------------------------- figures
async def _conversion(
    store: Store, *, application_id: str, mode: str, since: datetime, until: datetime, by: Any
) -> dict[str, Conversion]:
    v = VerificationRecord
    approved = func.sum(case((col(v.status) == "approved", 1), else_=0))
    query = (
        select(by, func.count(), approved)
        .where(
            col(v.application_id) == application_id,
            col(v.mode) == mode,
            col(v.created_at) >= since,
            col(v.created_at) < until,
            col(v.status) != "blocked",
        )
        .group_by(by)
    )
    async with store.session() as session:
        rows = (await session.exec(query)).all()
    return {
        str(key): Conversion(int(total), int(ok or 0)) for key, total, ok in rows if key is not None
    }


async def _tries(
    store: Store, *, application_id: str, mode: str, since: datetime
) -> dict[str, ProviderTries]:
    e = VerificationEvent
    kinds = [EventType.SENT.value, EventType.FAILED.value, EventType.SEND_ERROR.value]
    query = (
        select(e.provider, e.type, func.count())
        .where(
            col(e.application_id) == application_id,
            col(e.mode) == mode,
            col(e.occurred_at) >= since,
            col(e.type).in_(kinds),
            col(e.provider).is_not(None),
        )
        .group_by(e.provider, e.type)
    )
    async with store.session() as session:
        rows = (await session.exec(query)).all()
    counts: dict[str, dict[str, int]] = {}
    for provider, kind, n in rows:
        counts.setdefault(str(provider), {})[str(kind)] = int(n)
    return {
        provider: ProviderTries(
            sent=c.get(EventType.SENT.value, 0),
            failed=c.get(EventType.FAILED.value, 0),
            errors=c.get(EventType.SEND_ERROR.value, 0),
        )
        for provider, c in counts.items()
    }


async def _count(store: Store, query: Any) -> int:
    async with store.session() as session:
        return int((await session.exec(query)).one())


async def spend_figures(
    limiter: Limiter, caps: SpendCaps, *, application_id: str, mode: str, now: datetime
) -> list[Spend]:
    """Each cap switched on: its current period's total (micros) and amount."""
    out: list[Spend] = []
    scopes: list[tuple[CapName, str | None]] = [(CapName.DAILY, None), (CapName.MONTHLY, None)]
    scopes += [(CapName.COUNTRY_DAILY, country) for country in sorted(caps.country_daily)]
    for name, country in scopes:
        amount = caps.micros(name, country)
        if amount is None:
            continue
        spent = await limiter.get(budget_key(application_id, mode, name, now, country))
        refused = await limiter.get(refusals_key(application_id, mode, name, now, country))
        out.append(
            Spend(
                name.value,
                int(spent),
                amount,
                period_of(name, now).label,
                country,
                refused=int(refused),
            )
        )
    return out


async def figures(
    store: Store,
    limiter: Limiter,
    *,
    application_id: str,
    mode: Mode | str,
    rules: AlertRules,
    caps: SpendCaps,
    currency: str,
    now: datetime | None = None,
) -> Figures:
    """What the rules read about one application and mode, now."""
    when = now or utcnow()
    m = Mode(mode).value
    scope: dict[str, Any] = dict(application_id=application_id, mode=m)

    def span(rule: Any) -> dict[str, Any]:
        until = when - timedelta(seconds=rule.grace_s)
        return dict(since=until - timedelta(seconds=rule.window_s), until=until)

    v = VerificationRecord
    overall = await _conversion(store, **scope, **span(rules.conversion), by=col(v.mode))
    by_country = await _conversion(
        store, **scope, **span(rules.conversion_country), by=col(v.country)
    )
    by_channel = await _conversion(
        store, **scope, **span(rules.conversion_channel), by=col(v.first_channel)
    )
    deliveries = await _tries(
        store, **scope, since=when - timedelta(seconds=rules.delivery_failure.window_s)
    )
    recent = await _tries(
        store, **scope, since=when - timedelta(seconds=rules.provider_unreachable.window_s)
    )
    lockouts = await _count(
        store,
        select(func.count()).where(
            col(Lockout.application_id) == application_id,
            col(Lockout.mode) == m,
            col(Lockout.since) >= when - timedelta(seconds=rules.lockouts.window_s),
        ),
    )
    blocks = await _count(
        store,
        select(func.count()).where(
            col(RiskBlock.application_id) == application_id,
            col(RiskBlock.mode) == m,
            col(RiskBlock.automatic).is_(True),
            col(RiskBlock.created_at) >= when - timedelta(seconds=rules.risk_blocks.window_s),
        ),
    )
    query = select(WebhookEndpoint.id, WebhookEndpoint.disabled_reason).where(
        col(WebhookEndpoint.application_id) == application_id,
        col(WebhookEndpoint.mode) == m,
        col(WebhookEndpoint.enabled).is_(False),
    )
    async with store.session() as session:
        disabled = {str(i): r for i, r in (await session.exec(query)).all()}
    return Figures(
        conversion=overall.get(m, Conversion(0, 0)),
        conversion_by_country=by_country,
        conversion_by_channel=by_channel,
        deliveries=deliveries,
        recent_deliveries=recent,
        spend=await spend_figures(limiter, caps, application_id=application_id, mode=m, now=when),
        lockouts_started=lockouts,
        risk_blocks_started=blocks,
        disabled_endpoints=disabled,
        currency=currency,
    )


async def application_ids(store: Store) -> Sequence[str]:
    """Every application's id (the monitor evaluates them all)."""
    async with store.session() as session:
        return list((await session.exec(select(Application.id))).all())
