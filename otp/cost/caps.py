"""Spend caps of one application, in money: per UTC day, per UTC month, per country per
UTC day, and the default cost cap of one verification.

A cap is a budget (`otp.risk.limits.Budget`) per calendar period: the key names the
period (`<app>:<mode>:spend:d:2026-12-04`), so the total starts again from zero at
midnight UTC (the first of the month for the monthly cap) and the analytics' UTC days
add up to the same figures. Each send charges its estimate to every budget that applies,
all or nothing, before any provider call; a provider's price above its estimate is
charged afterwards (never refunded below it: the caps stay conservative).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator

from otp.cost.money import MAX_MICROS, format_amount, format_money, parse_amount
from otp.domain import Mode, StrictModel
from otp.risk.limits import Budget, Decision, Limit, Limiter

DEFAULT_DAILY = "1000.00"
DEFAULT_MONTHLY = "20000.00"


class CapName(StrEnum):
    """Cap names as 429 problems, alerts and `RateLimit-Policy` report them."""

    DAILY = "spend_daily"
    MONTHLY = "spend_monthly"
    COUNTRY_DAILY = "spend_country_daily"


def _amount(value: Any) -> str:
    micros = parse_amount(value)
    if micros > MAX_MICROS:
        raise ValueError("an amount is at most 1 000 000 000")
    return format_amount(micros)


class SpendCaps(StrictModel):
    """An application's caps in the deployment's currency (`OTP_CURRENCY`); an amount is a
    decimal string (`"250.00"`); `null` switches a cap off."""

    daily: str | None = Field(
        default=DEFAULT_DAILY,
        description="Most the application may spend per UTC day. Default 1000.00.",
    )
    monthly: str | None = Field(
        default=DEFAULT_MONTHLY,
        description="Most the application may spend per UTC calendar month. Default 20000.00.",
    )
    country_daily: dict[str, str] = Field(
        default_factory=dict,
        description='Most it may spend per UTC day on sends to one country, e.g. `{"ID": "50.00"}`.',
    )
    per_verification: str | None = Field(
        default=None,
        description="Default cost cap of one verification (a create's `max_cost` replaces "
        "it): a fallback step or resend whose estimate would take the verification past it "
        "is skipped. Default none.",
    )

    @field_validator("daily", "monthly", "per_verification", mode="before")
    @classmethod
    def _check_amount(cls, value: Any) -> str | None:
        return None if value is None else _amount(value)

    @field_validator("country_daily", mode="before")
    @classmethod
    def _check_countries(cls, value: Any) -> dict[str, str]:
        if not isinstance(value, Mapping):
            raise ValueError("country_daily maps ISO 3166-1 alpha-2 codes to amounts")
        checked: dict[str, str] = {}
        for country, amount in value.items():
            code = str(country).strip().upper()
            if len(code) != 2 or not code.isalpha():
                raise ValueError("countries are ISO 3166-1 alpha-2 codes like 'US'")
            checked[code] = _amount(amount)
        return checked

    def micros(self, name: CapName, country: str | None = None) -> int | None:
        if name is CapName.DAILY:
            return None if self.daily is None else parse_amount(self.daily)
        if name is CapName.MONTHLY:
            return None if self.monthly is None else parse_amount(self.monthly)
        amount = self.country_daily.get((country or "").upper())
        return None if amount is None else parse_amount(amount)

    @property
    def per_verification_micros(self) -> int | None:
        return None if self.per_verification is None else parse_amount(self.per_verification)


@dataclass(frozen=True)
class Period:
    """One cap's current period: its key suffix and when it ends."""

    label: str
    start: datetime
    end: datetime


def day_of(now: datetime) -> Period:
    start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return Period(start.date().isoformat(), start, start + timedelta(days=1))


def month_of(now: datetime) -> Period:
    start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    return Period(start.strftime("%Y-%m"), start, end)


def budget_key(
    application_id: str, mode: Mode | str, name: CapName, now: datetime, country: str | None = None
) -> str:
    """The budget key of one cap in the period containing `now`."""
    scope = f"{application_id}:{Mode(mode).value}:spend"
    if name is CapName.DAILY:
        return f"{scope}:d:{day_of(now).label}"
    if name is CapName.MONTHLY:
        return f"{scope}:m:{month_of(now).label}"
    return f"{scope}:cd:{(country or '').upper()}:{day_of(now).label}"


def period_of(name: CapName, now: datetime) -> Period:
    return month_of(now) if name is CapName.MONTHLY else day_of(now)


def budgets(
    caps: SpendCaps,
    *,
    application_id: str,
    mode: Mode | str,
    country: str | None,
    now: datetime,
) -> list[Budget]:
    """The budgets one send to `country` charges now (caps switched off are left out)."""
    out: list[Budget] = []
    names = [CapName.DAILY, CapName.MONTHLY]
    if country and country.upper() in caps.country_daily:
        names.append(CapName.COUNTRY_DAILY)
    for name in names:
        cap = caps.micros(name, country)
        if cap is None:
            continue
        period = period_of(name, now)
        out.append(
            Budget(
                key=budget_key(application_id, mode, name, now, country),
                limit=Limit(name.value, cap, int((period.end - period.start).total_seconds())),
                expires_at=period.end.timestamp(),
            )
        )
    return out


@dataclass(frozen=True)
class CapRefusal:
    """A send refused at a spend cap: which cap, its amount, what was spent and asked."""

    cap: str
    cap_micros: int
    spent_micros: int
    cost_micros: int
    currency: str
    retry_after_s: int
    country: str | None = None

    def reason(self) -> str:
        """For the record and the problem's detail (no destination)."""
        where = f" for {self.country}" if self.cap == CapName.COUNTRY_DAILY.value else ""
        return (
            f"{self.cap}{where} reached: {format_money(self.spent_micros, self.currency)} "
            f"spent of {format_money(self.cap_micros, self.currency)}, this send "
            f"{format_money(self.cost_micros, self.currency)}"
        )


def refusal_of(
    decisions: list[Decision], *, cost_micros: int, currency: str, country: str | None
) -> CapRefusal | None:
    refused = [d for d in decisions if not d.allowed]
    if not refused:
        return None
    first = refused[0]
    return CapRefusal(
        cap=first.limit.name,
        cap_micros=first.limit.limit,
        spent_micros=first.limit.limit - first.remaining,
        cost_micros=cost_micros,
        currency=currency,
        retry_after_s=max(d.reset_s for d in refused),
        country=country,
    )


@dataclass(frozen=True)
class SpendCharge:
    """What one send charges to the spend caps: its estimate to these budgets."""

    budgets: list[Budget]
    cost_micros: int
    currency: str
    country: str | None = None


async def charge(limiter: Limiter, spend: SpendCharge, *, member: str | None) -> CapRefusal | None:
    """Charge `spend` (all budgets or none); the refusal at the first full cap, or None.
    A send that costs nothing charges nothing."""
    if spend.cost_micros <= 0 or not spend.budgets:
        return None
    decisions = await limiter.charge(spend.budgets, cost=spend.cost_micros, member=member)
    return refusal_of(
        decisions, cost_micros=spend.cost_micros, currency=spend.currency, country=spend.country
    )


def refusals_key(
    application_id: str, mode: Mode | str, name: CapName, now: datetime, country: str | None = None
) -> str:
    """The counter of sends refused at a cap in its current period (alerts read it)."""
    return budget_key(application_id, mode, name, now, country) + ":refused"


async def note_refusal(
    limiter: Limiter, refusal: CapRefusal, *, application_id: str, mode: Mode | str
) -> None:
    """Count a send refused at a cap, for the period (best effort: never raises)."""
    try:
        name = CapName(refusal.cap)
        now = datetime.now(UTC)
        period = period_of(name, now)
        await limiter.incr(
            refusals_key(application_id, mode, name, now, refusal.country),
            ttl_s=max(1, int((period.end - now).total_seconds())),
        )
    except Exception:  # an alert's evidence, not the send's outcome
        return
