"""Alert rules of one application: what the monitor watches, with defaults that need no setup.

Every rule can be switched off (`enabled: false`); an application without stored rules
gets `AlertRules()`. Rates are fractions (0.5 is 50 %), windows seconds, volumes counts.
A rate rule judges nothing below its `min_volume`: ten verifications are too few to say
that conversion dropped. Rules hold no destination and no secret; email recipients are
operators' addresses, validated and lower-cased.

The rules, and the scopes their alerts are raised for:

- `conversion` (`all`), `conversion_country` (`country:<CC>`), `conversion_channel`
  (`channel:<channel>`): approved / started verifications under `threshold`;
- `delivery_failure` (`provider:<name>`): failed deliveries / tries over `threshold`;
- `spend` (`<cap>@<level>` or `spend_country_daily:<CC>@<level>`): a spend cap's current
  period at `levels` percent of its amount (80 and 100 by default);
- `lockouts`, `risk_blocks` (`all`): lockouts, or automatic risk blocks, started over the
  window above `above` (0: any one);
- `webhook_disabled` (`endpoint:<id>`): an endpoint of the application is disabled;
- `provider_unreachable` (`provider:<name>`): at least `min_tries` send tries through a
  provider over the window and not one accepted (every try a transient error or failure).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator

from otp.domain import StrictModel

DAY_S = 86_400


class AlertRule(StrEnum):
    """Rule names, as alerts and their events carry them."""

    CONVERSION = "conversion"
    CONVERSION_COUNTRY = "conversion_country"
    CONVERSION_CHANNEL = "conversion_channel"
    DELIVERY_FAILURE = "delivery_failure"
    SPEND = "spend"
    LOCKOUTS = "lockouts"
    RISK_BLOCKS = "risk_blocks"
    WEBHOOK_DISABLED = "webhook_disabled"
    PROVIDER_UNREACHABLE = "provider_unreachable"


class RateRule(StrictModel):
    """A rate over a sliding window, judged from `min_volume` events on."""

    enabled: bool = Field(default=True, description="Off: never raised.")
    threshold: float = Field(
        ge=0.0, le=1.0, description="The rate (0..1) the alert is raised beyond."
    )
    window_s: int = Field(
        default=3600, ge=60, le=30 * DAY_S, description="The window in seconds. Default 1 hour."
    )
    min_volume: int = Field(
        default=20, ge=1, le=10_000_000, description="Fewest events to judge. Default 20."
    )


class ConversionRule(RateRule):
    """Conversion: approved / started verifications, under `threshold`."""

    grace_s: int = Field(
        default=600,
        ge=0,
        le=DAY_S,
        description="Verifications younger than this are not counted yet (a user may "
        "still enter the code). Default 10 minutes.",
    )


class SpendRule(StrictModel):
    """Each spend cap's current period (daily, monthly, each country's daily)."""

    enabled: bool = Field(default=True, description="Off: never raised.")
    levels: list[int] = Field(
        default_factory=lambda: [80, 100],
        description="Percent of a cap an alert is raised at, one episode per level. "
        "Default 80 and 100.",
    )

    @field_validator("levels")
    @classmethod
    def _check_levels(cls, value: list[int]) -> list[int]:
        if not value or len(value) > 5:
            raise ValueError("between 1 and 5 levels")
        if any(level < 1 or level > 100 for level in value):
            raise ValueError("a level is a percent from 1 to 100")
        return sorted(set(value))


class CountRule(StrictModel):
    """Things started over a window, more than `above`."""

    enabled: bool = Field(default=True, description="Off: never raised.")
    window_s: int = Field(
        default=3600, ge=60, le=30 * DAY_S, description="The window in seconds. Default 1 hour."
    )
    above: int = Field(
        default=0, ge=0, le=1_000_000, description="Raised when more than this many started."
    )


class SwitchRule(StrictModel):
    enabled: bool = Field(default=True, description="Off: never raised.")


class UnreachableRule(StrictModel):
    """A provider with tries and not one accepted send over the window."""

    enabled: bool = Field(default=True, description="Off: never raised.")
    window_s: int = Field(
        default=900, ge=60, le=DAY_S, description="The window in seconds. Default 15 minutes."
    )
    min_tries: int = Field(
        default=5, ge=1, le=1_000_000, description="Fewest tries to judge. Default 5."
    )


def _conversion(threshold: float) -> Any:
    return lambda: ConversionRule(threshold=threshold)


class AlertRules(StrictModel):
    """An application's alert rules (`{}` gives every default)."""

    conversion: ConversionRule = Field(
        default_factory=_conversion(0.5),
        description="Overall conversion under 50 % over an hour, from 20 verifications.",
    )
    conversion_country: ConversionRule = Field(
        default_factory=_conversion(0.3),
        description="One country's conversion under 30 % over an hour, from 20.",
    )
    conversion_channel: ConversionRule = Field(
        default_factory=_conversion(0.4),
        description="Conversion of verifications started on one channel under 40 % over "
        "an hour, from 20.",
    )
    delivery_failure: RateRule = Field(
        default_factory=lambda: RateRule(threshold=0.25),
        description="One provider's failed deliveries over 25 % of its tries over an hour, "
        "from 20 tries.",
    )
    spend: SpendRule = Field(default_factory=SpendRule, description="Spend caps at 80 and 100 %.")
    lockouts: CountRule = Field(
        default_factory=CountRule, description="Any lockout started over the last hour."
    )
    risk_blocks: CountRule = Field(
        default_factory=CountRule,
        description="Any automatic risk block started over the last hour.",
    )
    webhook_disabled: SwitchRule = Field(
        default_factory=SwitchRule, description="A webhook endpoint is disabled."
    )
    provider_unreachable: UnreachableRule = Field(
        default_factory=UnreachableRule,
        description="A provider with 5 tries and none accepted over 15 minutes.",
    )
    email_to: list[str] = Field(
        default_factory=list,
        description="Operators' addresses alerts are emailed to (none: webhooks only).",
    )

    @field_validator("email_to")
    @classmethod
    def _check_emails(cls, value: list[str]) -> list[str]:
        if len(value) > 20:
            raise ValueError("at most 20 recipients")
        out: list[str] = []
        for item in value:
            address = item.strip().lower()
            local, at, domain = address.partition("@")
            if not at or not local or "." not in domain or any(c.isspace() for c in address):
                raise ValueError("recipients are email addresses like ops@example.com")
            if address not in out:
                out.append(address)
        return out

    def enabled(self, rule: AlertRule) -> bool:
        """Whether `rule` is switched on."""
        return bool(getattr(self, rule.value).enabled)
