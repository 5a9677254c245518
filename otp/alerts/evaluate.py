"""Evaluation of alert rules: figures in, conditions out (pure, no clock, no store).

`Figures` are what the store and the limiter say about one application and mode now
(`otp.store.alerts.figures`); `evaluate` returns every condition that holds, each with
its rule, its scope and its evidence (the figures and the window that raised it). The
monitor compares them with the alerts firing: a new condition starts an episode, a
firing alert whose condition no longer holds is resolved. Evidence carries counts,
rates, amounts and ids only: never a destination.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from otp.alerts.rules import AlertRule, AlertRules, ConversionRule, RateRule


@dataclass(frozen=True)
class Conversion:
    """Verifications started (and counted) over a window, and how many were approved."""

    started: int
    approved: int


@dataclass(frozen=True)
class ProviderTries:
    """One provider's send tries over a window: accepted, failed (receipt or permanent
    refusal) and transient errors."""

    sent: int = 0
    failed: int = 0
    errors: int = 0

    @property
    def tries(self) -> int:
        return self.sent + self.failed + self.errors


@dataclass(frozen=True)
class Spend:
    """One spend cap's current period: spent and the cap, in micros."""

    cap: str
    spent_micros: int
    cap_micros: int
    period: str
    country: str | None = None
    # Sends refused at the cap this period (a refusal can come just below 100 %).
    refused: int = 0


@dataclass(frozen=True)
class Figures:
    """Everything the rules read about one application and mode."""

    conversion: Conversion = Conversion(0, 0)
    conversion_by_country: dict[str, Conversion] = field(default_factory=dict)
    conversion_by_channel: dict[str, Conversion] = field(default_factory=dict)
    # Over the delivery_failure window, and over the provider_unreachable window.
    deliveries: dict[str, ProviderTries] = field(default_factory=dict)
    recent_deliveries: dict[str, ProviderTries] = field(default_factory=dict)
    spend: list[Spend] = field(default_factory=list)
    lockouts_started: int = 0
    risk_blocks_started: int = 0
    disabled_endpoints: dict[str, str | None] = field(default_factory=dict)  # id -> reason
    currency: str = "USD"


@dataclass(frozen=True)
class Condition:
    """A rule that holds for one scope, with its evidence."""

    rule: AlertRule
    scope: str
    evidence: dict[str, Any]

    @property
    def key(self) -> tuple[str, str]:
        return (self.rule.value, self.scope)


def _rate(numerator: int, denominator: int) -> float:
    return round(numerator / denominator, 4) if denominator else 0.0


def _conversion(
    rule: AlertRule, settings: ConversionRule, scope: str, figures: Conversion
) -> Condition | None:
    if figures.started < settings.min_volume:
        return None
    rate = _rate(figures.approved, figures.started)
    if rate >= settings.threshold:
        return None
    return Condition(
        rule,
        scope,
        {
            "started": figures.started,
            "approved": figures.approved,
            "rate": rate,
            "threshold": settings.threshold,
            "min_volume": settings.min_volume,
            "window_s": settings.window_s,
            "grace_s": settings.grace_s,
        },
    )


def _failure(settings: RateRule, provider: str, tries: ProviderTries) -> Condition | None:
    if tries.tries < settings.min_volume:
        return None
    rate = _rate(tries.failed + tries.errors, tries.tries)
    if rate <= settings.threshold:
        return None
    return Condition(
        AlertRule.DELIVERY_FAILURE,
        f"provider:{provider}",
        {
            "tries": tries.tries,
            "sent": tries.sent,
            "failed": tries.failed,
            "errors": tries.errors,
            "rate": rate,
            "threshold": settings.threshold,
            "min_volume": settings.min_volume,
            "window_s": settings.window_s,
        },
    )


def evaluate(rules: AlertRules, figures: Figures) -> list[Condition]:
    """Every condition that holds for these figures under these rules."""
    out: list[Condition] = []
    if rules.conversion.enabled:
        found = _conversion(AlertRule.CONVERSION, rules.conversion, "all", figures.conversion)
        out += [found] if found else []
    for rule, settings, groups, prefix in (
        (
            AlertRule.CONVERSION_COUNTRY,
            rules.conversion_country,
            figures.conversion_by_country,
            "country",
        ),
        (
            AlertRule.CONVERSION_CHANNEL,
            rules.conversion_channel,
            figures.conversion_by_channel,
            "channel",
        ),
    ):
        if not settings.enabled:
            continue
        for name, group in sorted(groups.items()):
            found = _conversion(rule, settings, f"{prefix}:{name}", group)
            out += [found] if found else []
    if rules.delivery_failure.enabled:
        for provider, tries in sorted(figures.deliveries.items()):
            found = _failure(rules.delivery_failure, provider, tries)
            out += [found] if found else []
    if rules.provider_unreachable.enabled:
        need = rules.provider_unreachable
        for provider, tries in sorted(figures.recent_deliveries.items()):
            if tries.sent == 0 and tries.tries >= need.min_tries:
                out.append(
                    Condition(
                        AlertRule.PROVIDER_UNREACHABLE,
                        f"provider:{provider}",
                        {
                            "tries": tries.tries,
                            "sent": 0,
                            "failed": tries.failed,
                            "errors": tries.errors,
                            "min_tries": need.min_tries,
                            "window_s": need.window_s,
                        },
                    )
                )
    if rules.spend.enabled:
        out += _spend(rules, figures)
    for rule, count_rule, count in (
        (AlertRule.LOCKOUTS, rules.lockouts, figures.lockouts_started),
        (AlertRule.RISK_BLOCKS, rules.risk_blocks, figures.risk_blocks_started),
    ):
        if count_rule.enabled and count > count_rule.above:
            out.append(
                Condition(
                    rule,
                    "all",
                    {"started": count, "above": count_rule.above, "window_s": count_rule.window_s},
                )
            )
    if rules.webhook_disabled.enabled:
        for endpoint_id, reason in sorted(figures.disabled_endpoints.items()):
            out.append(
                Condition(
                    AlertRule.WEBHOOK_DISABLED,
                    f"endpoint:{endpoint_id}",
                    {"endpoint_id": endpoint_id, "reason": reason},
                )
            )
    return out


def _spend(rules: AlertRules, figures: Figures) -> list[Condition]:
    out: list[Condition] = []
    for spend in figures.spend:
        if spend.cap_micros <= 0:
            continue
        percent = spend.spent_micros * 100 / spend.cap_micros
        cap = f"{spend.cap}:{spend.country}" if spend.country else spend.cap
        for level in rules.spend.levels:
            if percent >= level or (level >= 100 and spend.refused > 0):
                out.append(
                    Condition(
                        AlertRule.SPEND,
                        f"{cap}@{level}",
                        {
                            "cap": spend.cap,
                            "country": spend.country,
                            "level": level,
                            "percent": round(percent, 2),
                            "spent_micros": spend.spent_micros,
                            "cap_micros": spend.cap_micros,
                            "refused": spend.refused,
                            "currency": figures.currency,
                            "period": spend.period,
                        },
                    )
                )
    return out


def observed(rules: AlertRules, figures: Figures, rule: str, scope: str) -> dict[str, Any]:
    """The current figures of one rule and scope (a resolve's evidence)."""
    kind, _, name = scope.partition(":")
    if rule in (AlertRule.CONVERSION, AlertRule.CONVERSION_COUNTRY, AlertRule.CONVERSION_CHANNEL):
        group = {
            AlertRule.CONVERSION: {"all": figures.conversion},
            AlertRule.CONVERSION_COUNTRY: figures.conversion_by_country,
            AlertRule.CONVERSION_CHANNEL: figures.conversion_by_channel,
        }[AlertRule(rule)].get(name or kind, Conversion(0, 0))
        settings: ConversionRule = getattr(rules, rule)
        return {
            "started": group.started,
            "approved": group.approved,
            "rate": _rate(group.approved, group.started),
            "window_s": settings.window_s,
        }
    if rule in (AlertRule.DELIVERY_FAILURE, AlertRule.PROVIDER_UNREACHABLE):
        source = (
            figures.deliveries if rule == AlertRule.DELIVERY_FAILURE else figures.recent_deliveries
        )
        tries = source.get(name, ProviderTries())
        return {
            "tries": tries.tries,
            "sent": tries.sent,
            "failed": tries.failed,
            "errors": tries.errors,
        }
    if rule == AlertRule.SPEND:
        cap, _, _level = scope.partition("@")
        cap_name, _, country = cap.partition(":")
        for spend in figures.spend:
            if spend.cap == cap_name and (spend.country or "") == country:
                return {
                    "spent_micros": spend.spent_micros,
                    "cap_micros": spend.cap_micros,
                    "period": spend.period,
                }
        return {"cap": "switched off"}
    if rule == AlertRule.LOCKOUTS:
        return {"started": figures.lockouts_started}
    if rule == AlertRule.RISK_BLOCKS:
        return {"started": figures.risk_blocks_started}
    return {}
