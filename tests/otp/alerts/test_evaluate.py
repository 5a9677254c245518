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
