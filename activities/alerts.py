"""The alert evaluation activity: figures -> conditions -> episodes -> notifications.

For every application and both modes: read its rules, compute the figures
(`otp.store.alerts.figures`), evaluate them (`otp.alerts.evaluate`), open an alert for
each new condition and resolve each firing alert whose condition no longer holds. Then
every trigger or resolve not yet notified is notified: an `alert.triggered` /
`alert.resolved` webhook event (its id derived from the alert id and the transition, so a
retried activity dispatches the same message and the endpoint receives it once) and an
email to the application's `email_to` through the SMTP server of the settings. What each
reached is kept on the alert (`deliveries`). A notification that fails is left
unmarked and tried again next tick; an email may then go out twice, never zero times.
Nothing here carries a destination: evidence holds counts, rates, amounts and ids.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from temporalio import activity

from otp.alerts.evaluate import evaluate, observed
from otp.applications.model import ApplicationPublic
from otp.cost.money import format_money
from otp.domain import (
    ACTIVITY_EVALUATE_ALERTS,
    Channel,
    EvaluateAlertsInput,
    EvaluateAlertsResult,
    Mode,
    WebhookEvent,
    WebhookEventType,
    webhook_message_id,
)
from otp.risk.limits import Limiter
from otp.settings import Settings
from otp.store import Store
from otp.store import alerts as db
from otp.store.applications import get_application, list_applications
from otp.store.events import Dispatch
from otp.store.tables import AlertRecord, utcnow
from providers.base import OutboundMessage, Provider
from providers.registry import build_provider

logger = logging.getLogger("otp.alerts")

TRIGGERED = "triggered"
RESOLVED = "resolved"


def alert_data(alert: AlertRecord) -> dict[str, Any]:
    """What an alert event and an alert read say."""
    return {
        "alert_id": alert.id,
        "rule": alert.rule,
        "scope": alert.scope,
        "state": alert.state,
        "started_at": alert.started_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        "evidence": alert.evidence,
        "resolved_evidence": alert.resolved_evidence,
    }


def alert_event(alert: AlertRecord, transition: str) -> WebhookEvent:
    """The webhook event of one transition of an alert (stable id per transition)."""
    kind = (
        WebhookEventType.ALERT_TRIGGERED
        if transition == TRIGGERED
        else (WebhookEventType.ALERT_RESOLVED)
    )
    at = alert.started_at if transition == TRIGGERED else (alert.resolved_at or utcnow())
    return WebhookEvent(
        id=webhook_message_id(alert.id, transition),
        type=kind,
        application_id=alert.application_id,
        mode=Mode(alert.mode),
        occurred_at=at,
        data=alert_data(alert),
    )


def _summary(alert: AlertRecord, currency: str) -> str:
    evidence = alert.evidence
    if "rate" in evidence:
        return f"rate {evidence['rate']:.1%} (threshold {evidence.get('threshold', 0):.0%})"
    if "spent_micros" in evidence:
        spent = format_money(int(evidence["spent_micros"]), currency)
        cap = format_money(int(evidence["cap_micros"]), currency)
        return f"{spent} of {cap} ({evidence['percent']} %)"
    if "started" in evidence:
        return f"{evidence['started']} started"
    if "tries" in evidence:
        return f"{evidence['tries']} tries, none accepted"
    return "see evidence"


def alert_email(
    alert: AlertRecord, transition: str, application: str, currency: str
) -> tuple[str, str]:
    """Subject and text of an alert email."""
    word = "ALERT" if transition == TRIGGERED else "RESOLVED"
    subject = f"[{word}] {application} ({alert.mode}): {alert.rule} {alert.scope}"
    lines = [
        f"Application: {application} ({alert.mode} mode)",
        f"Rule: {alert.rule}",
        f"Scope: {alert.scope}",
        f"State: {alert.state}",
        f"Started: {alert.started_at.isoformat()}",
    ]
    if alert.resolved_at is not None:
        lines.append(f"Resolved: {alert.resolved_at.isoformat()}")
    lines += [
        f"Summary at trigger: {_summary(alert, currency)}",
        "",
        "Evidence at trigger:",
        json.dumps(alert.evidence, indent=2, sort_keys=True),
    ]
    if alert.resolved_evidence is not None:
        lines += ["", "Evidence at resolve:", json.dumps(alert.resolved_evidence, indent=2)]
    lines += ["", f"Alert id: {alert.id}"]
    return subject, "\n".join(lines)


class AlertActivities:
    """Evaluates every application's alert rules and notifies what changed."""

    def __init__(
        self,
        store: Store,
        limiter: Limiter,
        settings: Settings,
        *,
        dispatch: Dispatch | None = None,
        mailer: Provider | None = None,
    ) -> None:
        self._store = store
        self._limiter = limiter
        self._settings = settings
        self._dispatch = dispatch
        if mailer is None:
            sender = settings.alerts_email_from or settings.smtp_from
            mailer = build_provider(settings.model_copy(update={"smtp_from": sender}), "smtp")
        self._mailer = mailer

    @activity.defn(name=ACTIVITY_EVALUATE_ALERTS)
    async def evaluate_alerts(self, input: EvaluateAlertsInput) -> EvaluateAlertsResult:
        """Evaluate the rules of every application (or one) in both modes and notify."""
        result = EvaluateAlertsResult()
        for application in await self._applications(input.application_id):
            result.applications += 1
            for mode in (Mode.LIVE, Mode.TEST):
                opened, closed = await self.evaluate_one(application, mode)
                result.triggered += opened
                result.resolved += closed
                result.notified += await self.notify_pending(application, mode)
        return result

    async def _applications(self, application_id: str | None) -> list[ApplicationPublic]:
        if application_id is not None:
            one = await get_application(self._store, application_id=application_id)
            return [one] if one else []
        out: list[ApplicationPublic] = []
        after: str | None = None
        while True:
            page = await list_applications(self._store, limit=200, after=after)
            out += page
            if len(page) < 200:
                return out
            after = page[-1].id

    async def evaluate_one(
        self, application: ApplicationPublic, mode: Mode, *, now: datetime | None = None
    ) -> tuple[int, int]:
        """Open and resolve this application's alerts in `mode`; (opened, resolved)."""
        when = now or utcnow()
        rules = await db.get_rules(self._store, application_id=application.id)
        figures = await db.figures(
            self._store,
            self._limiter,
            application_id=application.id,
            mode=mode,
            rules=rules,
            caps=application.risk.spend_caps,
            currency=self._settings.currency,
            now=when,
        )
        conditions = {c.key: c for c in evaluate(rules, figures)}
        firing = await db.open_alerts(self._store, application_id=application.id, mode=mode.value)
        opened = resolved = 0
        held = {(a.rule, a.scope) for a in firing}
        for key, condition in conditions.items():
            if key in held:
                continue
            row = await db.open_alert(
                self._store,
                application_id=application.id,
                mode=mode.value,
                rule=condition.rule.value,
                scope=condition.scope,
                evidence=condition.evidence,
                now=when,
            )
            if row is not None:
                opened += 1
                logger.warning(
                    "alert triggered",
                    extra={
                        "alert_id": row.id,
                        "application_id": application.id,
                        "rule": row.rule,
                        "scope": row.scope,
                        "mode": mode.value,
                    },
                )
        for alert in firing:
            if (alert.rule, alert.scope) in conditions:
                continue
            evidence = observed(rules, figures, alert.rule, alert.scope)
            done = await db.resolve_alert(
                self._store, alert_id=alert.id, evidence=evidence, now=when
            )
            if done is not None:
                resolved += 1
                logger.info(
                    "alert resolved",
                    extra={
                        "alert_id": alert.id,
                        "application_id": application.id,
                        "rule": alert.rule,
                        "scope": alert.scope,
                        "mode": mode.value,
                    },
                )
        return opened, resolved

    async def notify_pending(self, application: ApplicationPublic, mode: Mode) -> int:
        """Notify every trigger and resolve not notified yet; how many were."""
        rules = await db.get_rules(self._store, application_id=application.id)
        done = 0
        for alert in await db.unnotified(
            self._store, application_id=application.id, mode=mode.value
        ):
            transitions = [] if alert.triggered_notified else [TRIGGERED]
            if alert.state == db.RESOLVED and not alert.resolved_notified:
                transitions.append(RESOLVED)
            for transition in transitions:
                outcome = await self._notify(alert, transition, application, rules.email_to)
                if outcome is None:
                    break  # tried again next tick, in order
                await db.mark_notified(
                    self._store, alert_id=alert.id, transition=transition, outcome=outcome
                )
                done += 1
        return done

    async def _notify(
        self,
        alert: AlertRecord,
        transition: str,
        application: ApplicationPublic,
        recipients: list[str],
    ) -> dict[str, Any] | None:
        outcome: dict[str, Any] = {"at": utcnow().isoformat(), "webhooks": 0, "emails": 0}
        if self._dispatch is not None:
            try:
                outcome["webhooks"] = await self._dispatch(alert_event(alert, transition))
            except Exception as exc:
                logger.warning(
                    "alert webhook not dispatched; retried next tick",
                    extra={"alert_id": alert.id, "error": type(exc).__name__},
                )
                return None
        subject, text = alert_email(alert, transition, application.name, self._settings.currency)
        failed: list[str] = []
        for n, to in enumerate(recipients):
            try:
                await self._mailer.send(
                    OutboundMessage(
                        verification_id=alert.id,
                        application_id=alert.application_id,
                        channel=Channel.EMAIL,
                        to=to,
                        subject=subject,
                        text=text,
                        idempotency_key=f"{alert.id}:{transition}:{n}",
                    )
                )
                outcome["emails"] += 1
            except Exception as exc:
                failed.append(type(exc).__name__)
        if failed:
            outcome["email_errors"] = failed
            logger.warning(
                "alert email not sent",
                extra={"alert_id": alert.id, "failed": len(failed)},
            )
        return outcome
