"""Evaluation of alert rules from figures, and validation of the rules."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from otp.alerts.evaluate import Conversion, Figures, ProviderTries, Spend, evaluate
from otp.alerts.rules import AlertRule, AlertRules


def test_default_rules_raise_nothing_on_quiet_figures() -> None:
    assert evaluate(AlertRules(), Figures()) == []


def test_conversion_drop_raises_only_from_the_minimum_volume() -> None:
    low = Figures(conversion=Conversion(started=40, approved=8))
    [found] = evaluate(AlertRules(), low)
    assert (found.rule, found.scope) == (AlertRule.CONVERSION, "all")
    assert found.evidence["rate"] == 0.2 and found.evidence["started"] == 40
    assert evaluate(AlertRules(), Figures(conversion=Conversion(started=19, approved=0))) == []
    off = AlertRules.model_validate({"conversion": {"enabled": False, "threshold": 0.5}})
    assert evaluate(off, low) == []


def test_spend_levels_providers_and_endpoints() -> None:
    figures = Figures(
        spend=[Spend("spend_daily", 850_000_000, 1_000_000_000, "2026-12-04")],
        deliveries={"twilio": ProviderTries(sent=10, failed=10)},
        recent_deliveries={"twilio": ProviderTries(errors=6)},
        disabled_endpoints={"whe_1": "failing"},
        lockouts_started=1,
    )
    keys = {c.key for c in evaluate(AlertRules(), figures)}
    assert keys == {
        ("spend", "spend_daily@80"),
        ("delivery_failure", "provider:twilio"),
        ("provider_unreachable", "provider:twilio"),
        ("webhook_disabled", "endpoint:whe_1"),
        ("lockouts", "all"),
    }


@pytest.mark.parametrize(
    "bad",
    [
        {"conversion": {"threshold": 1.5}},
        {"spend": {"levels": [0]}},
        {"email_to": ["not-an-address"]},
        {"unknown": 1},
    ],
)
def test_bad_rules_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        AlertRules.model_validate(bad)


def test_a_send_refused_at_a_cap_raises_the_full_level_just_below_it() -> None:
    below = Spend("spend_daily", 990_000, 1_000_000, "2026-12-05")
    refused = Spend("spend_daily", 990_000, 1_000_000, "2026-12-05", refused=1)
    quiet = {c.scope for c in evaluate(AlertRules(), Figures(spend=[below]))}
    assert quiet == {"spend_daily@80"}
    raised = {c.scope: c for c in evaluate(AlertRules(), Figures(spend=[refused]))}
    assert set(raised) == {"spend_daily@80", "spend_daily@100"}
    assert raised["spend_daily@100"].evidence["refused"] == 1


async def test_refusals_at_a_cap_are_counted_per_period_and_read_by_the_figures(
    any_store: object,
) -> None:
    from datetime import UTC, datetime

    from otp.cost import caps
    from otp.risk.limits.store import StoreLimiter
    from otp.store import Store
    from otp.store.alerts import spend_figures

    assert isinstance(any_store, Store)
    limiter = StoreLimiter(any_store)
    refusal = caps.CapRefusal("spend_daily", 1_000_000, 995_000, 8_300, "USD", 60)
    await caps.note_refusal(limiter, refusal, application_id="app_a", mode="live")
    settings = caps.SpendCaps(daily="1.00")
    found = await spend_figures(
        limiter, settings, application_id="app_a", mode="live", now=datetime.now(UTC)
    )
    assert [(s.cap, s.refused) for s in found] == [("spend_daily", 1), ("spend_monthly", 0)]
