"""Fraud and abuse controls of one application: the policy stored in `applications.risk`,
the pure policy gates run before a verification starts, and the limiter hits it charges.

The policy gates and the key builders are pure; the few async functions at the end do
their I/O only through an `otp.risk.limits.Limiter` (hits and counters). The API runs
`gate_create` before any workflow starts and `failed_checks_reached` / `note_check`
around each check; the delivery gate of resends and fallback sends reuses `send_hits`,
`send_hits`; the spend caps are `otp.cost.caps`.

Limiter keys never hold a destination, an IP address or an end-user id in clear: a
destination is its keyed `otp.store.events.destination_hash`, an IP or a user id a keyed hash
of its own. Every key is scoped to one application and one mode (`<app>:<mode>:...`), so
test traffic never uses up live limits and applications never see each other's counts.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import phonenumbers
from phonenumbers import PhoneNumberType
from pydantic import Field, field_validator, model_validator

from otp.cost.caps import CapRefusal, SpendCaps, SpendCharge, charge
from otp.domain import Channel, ChannelStep, Mode, StrictModel
from otp.domain.destinations import country_of, number_prefix, range_hash
from otp.risk.limits import Decision, Hit, Limit, Limiter
from otp.store.events import destination_hash

__all__ = [
    "DEFAULT_BLOCKED_NUMBER_TYPES",
    "DEFAULT_LOCKOUT_DURATION_S",
    "FAILED_CHECKS_TTL_S",
    "USER_ID_MAX",
    "CreateGate",
    "LimitName",
    "Rate",
    "Refusal",
    "RefusalReason",
    "RiskSettings",
    "create_hits",
    "destination_hashes",
    "evaluate",
    "failed_check_keys",
    "failed_checks_key",
    "failed_checks_reached",
    "gate_create",
    "ip_hash",
    "is_safe_listed",
    "note_check",
    "ratelimit_headers",
    "retry_after_s",
    "send_hits",
    "tightest",
    "user_hash",
]

USER_ID_MAX = 128
# A destination's failed-check counter is forgotten this long after its last failure.
FAILED_CHECKS_TTL_S = 30 * 86_400
# A destination at the cap is refused this long by default (`lockout_duration_s`).
DEFAULT_LOCKOUT_DURATION_S = 86_400

# Number types no OTP should be sent to on a phone channel: the recipient earns money
# from every message or call (premium rate, shared cost) or the number is a company's
# universal access number, never a person's handset (UAN).
DEFAULT_BLOCKED_NUMBER_TYPES: tuple[str, ...] = ("PREMIUM_RATE", "SHARED_COST", "UAN")
_NUMBER_TYPES = {
    name: getattr(PhoneNumberType, name)
    for name in dir(PhoneNumberType)
    if name.isupper() and isinstance(getattr(PhoneNumberType, name), int)
}
_COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
_PREFIX_RE = re.compile(r"^\+[0-9]{1,15}$")
_KEY_LABEL = b"otp/risk/policy/v1"


class LimitName(StrEnum):
    """Policy names as `RateLimit-Policy` and 429 problems report them."""

    DESTINATION = "destination"
    IP = "ip"
    USER = "user"
    PREFIX = "prefix"
    COUNTRY = "country"
    APPLICATION = "application"


class RefusalReason(StrEnum):
    """Machine reasons of a `risk-policy` refusal (403)."""

    COUNTRY_NOT_ALLOWED = "country_not_allowed"
    NUMBER_TYPE_BLOCKED = "number_type_blocked"
    PREFIX_BLOCKED = "prefix_blocked"
    FAILED_CHECKS_EXCEEDED = "failed_checks_exceeded"
    # A block in force for the destination's country or number range (risk blocks).
    SCOPE_BLOCKED = "scope_blocked"


@dataclass(frozen=True)
class Refusal:
    """Why a gate refused: a machine reason, the plan step and what matched (never the
    destination itself: a country code, a number type name or a configured prefix)."""

    reason: RefusalReason
    step_index: int | None = None
    detail: str | None = None


# No rate window is longer: older hits can be swept.
LONGEST_RATE_WINDOW_S = 31 * 86_400


class Rate(StrictModel):
    """At most `limit` units per sliding `window_s` seconds."""

    limit: int = Field(ge=1, le=100_000_000)
    window_s: int = Field(ge=1, le=LONGEST_RATE_WINDOW_S)

    def named(self, name: LimitName) -> Limit:
        return Limit(name.value, self.limit, self.window_s)


class RiskSettings(StrictModel):
    """An application's fraud settings (`applications.risk`; `{}` gives every default).

    Safe defaults: every country allowed, premium-rate, shared-cost and UAN numbers
    refused on phone channels, 5 sends per destination per 10 minutes, 100 failed checks
    per destination (NIST SP 800-63B 5.2.2) before it is locked out for 24 hours (or until
    an operator unlocks it), and the velocity limits below. A limit set to `null` is switched off.
    """

    # --- geo permissions
    allowed_countries: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Countries (ISO 3166-1 alpha-2) each phone channel may send to, e.g. "
        '`{"sms": ["US", "CA"], "*": ["US"]}`; `*` covers channels without their own list. '
        "No list for a channel: every country, unless `deny_by_default`.",
    )
    deny_by_default: bool = Field(
        default=False,
        description="Refuse every country on a phone channel that has no list (nor `*`).",
    )
    # --- number types and prefixes (phone channels only)
    blocked_number_types: list[str] = Field(
        default_factory=lambda: list(DEFAULT_BLOCKED_NUMBER_TYPES),
        description="`phonenumbers.PhoneNumberType` names refused on sms, voice and "
        "whatsapp. Default: PREMIUM_RATE, SHARED_COST, UAN.",
    )
    block_voip: bool = Field(default=False, description="Also refuse VOIP numbers.")
    blocked_prefixes: list[str] = Field(
        default_factory=list,
        description='E.164 prefixes refused on phone channels, e.g. `"+8823"`.',
    )
    # --- velocity limits (sliding windows; null: off)
    per_destination: Rate | None = Field(
        default_factory=lambda: Rate(limit=5, window_s=600),
        description="Sends to one phone number or email. Default 5 per 10 minutes.",
    )
    per_ip: Rate | None = Field(
        default_factory=lambda: Rate(limit=30, window_s=3600),
        description="Creates for one end-user IP address (the request's `user_ip`). "
        "Default 30 per hour.",
    )
    per_user: Rate | None = Field(
        default_factory=lambda: Rate(limit=10, window_s=3600),
        description="Creates for one `user_id` of the caller. Default 10 per hour.",
    )
    per_prefix: Rate | None = Field(
        default_factory=lambda: Rate(limit=30, window_s=3600),
        description="Sends to one number range (the number without its last 4 digits). "
        "Default 30 per hour.",
    )
    per_country_day: Rate | None = Field(
        default_factory=lambda: Rate(limit=10_000, window_s=86_400),
        description="Sends to one country. Default 10 000 per day.",
    )
    per_application: Rate | None = Field(
        default_factory=lambda: Rate(limit=6_000, window_s=60),
        description="Creates of the application. Default 6 000 per minute.",
    )
    # --- money (see otp.cost.caps; amounts in the deployment's currency)
    spend_caps: SpendCaps = Field(
        default_factory=SpendCaps,
        description="Spend caps per UTC day, per month and per country per day, and the "
        "default cost cap of one verification. Default 1000.00 a day, 20000.00 a month.",
    )
    # --- failed checks
    max_failed_checks: int = Field(
        default=100,
        ge=1,
        le=1_000_000,
        description="Wrong codes per destination, across verifications, before new "
        "verifications and checks for it are refused (a lockout, see `lockout_duration_s`); "
        "a correct code resets the count.",
    )
    lockout_duration_s: int = Field(
        default=DEFAULT_LOCKOUT_DURATION_S,
        ge=60,
        le=FAILED_CHECKS_TTL_S,
        description="How long a destination stays locked out once it reached "
        "`max_failed_checks`, unless an operator unlocks it first. Default 24 hours.",
    )
    # --- resends
    resend_backoff: float = Field(
        default=2.0,
        ge=1.0,
        le=10.0,
        description="Growth factor of the resend cooldown after each resend (1: constant).",
    )
    # --- conversion monitoring (None: the service's defaults, see otp.risk.conversion_monitor)
    conversion_enabled: bool | None = Field(
        default=None, description="Block ranges and countries that rarely convert. Default on."
    )
    conversion_threshold: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Approved ÷ started below which a range or country is blocked. Default 0.2.",
    )
    conversion_min_volume: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="Verifications of a number range judged before it can be blocked. Default 20.",
    )
    conversion_country_min_volume: int | None = Field(
        default=None,
        ge=1,
        le=10_000_000,
        description="The same for a whole country. Default 100.",
    )
    conversion_window_s: int | None = Field(
        default=None,
        ge=60,
        le=7 * 86_400,
        description="The rolling window conversion is measured over. Default 1 hour.",
    )
    conversion_grace_s: int | None = Field(
        default=None,
        ge=0,
        le=86_400,
        description="Age before a pending verification counts as not converted. Default 120 s.",
    )
    block_durations_s: list[int] | None = Field(
        default=None,
        min_length=1,
        max_length=10,
        description="Durations of the 1st, 2nd, ... automatic block of the same scope "
        "(the last repeats). Default 1 h, 6 h, 24 h, 7 days.",
    )
    block_escalation_lookback_s: int | None = Field(
        default=None,
        ge=0,
        le=365 * 86_400,
        description="How far back earlier automatic blocks count for escalation. Default 30 days.",
    )

    @model_validator(mode="before")
    @classmethod
    def _replaced_fields(cls, value: Any) -> Any:
        if isinstance(value, dict) and ({"daily_spend", "channel_costs"} & value.keys()):
            raise ValueError(
                "`daily_spend` and `channel_costs` (cost units) were replaced by `spend_caps` "
                '(money, e.g. {"daily": "250.00", "monthly": "5000.00"}): see the cost page '
                "of the documentation"
            )
        return value

    @field_validator("allowed_countries")
    @classmethod
    def _check_countries(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        allowed_keys = {"*"} | {c.value for c in Channel if c.is_phone}
        checked: dict[str, list[str]] = {}
        for key, countries in value.items():
            if key not in allowed_keys:
                raise ValueError(f"allowed_countries keys are phone channels or '*', not {key!r}")
            upper = [c.strip().upper() for c in countries]
            bad = [c for c in upper if not _COUNTRY_RE.match(c)]
            if bad:
                raise ValueError("countries are ISO 3166-1 alpha-2 codes like 'US'")
            checked[key] = list(dict.fromkeys(upper))
        return checked

    @field_validator("blocked_number_types")
    @classmethod
    def _check_types(cls, value: list[str]) -> list[str]:
        upper = [v.strip().upper() for v in value]
        unknown = [v for v in upper if v not in _NUMBER_TYPES]
        if unknown:
            raise ValueError(
                "unknown number types: "
                + ", ".join(unknown)
                + " (use phonenumbers names: "
                + ", ".join(sorted(_NUMBER_TYPES))
                + ")"
            )
        return list(dict.fromkeys(upper))

    @field_validator("blocked_prefixes")
    @classmethod
    def _check_prefixes(cls, value: list[str]) -> list[str]:
        cleaned = [v.replace(" ", "") for v in value]
        if any(not _PREFIX_RE.match(v) for v in cleaned):
            raise ValueError("prefixes are '+' and 1 to 15 digits, like '+8823'")
        return list(dict.fromkeys(cleaned))

    @classmethod
    def of(cls, stored: dict[str, Any] | None) -> RiskSettings:
        """The settings in an `applications.risk` column (empty: the defaults)."""
        return cls.model_validate(stored or {})

    def blocked_types(self) -> frozenset[int]:
        types = {_NUMBER_TYPES[name] for name in self.blocked_number_types}
        if self.block_voip:
            types.add(PhoneNumberType.VOIP)
        return frozenset(types)

    def countries_for(self, channel: Channel) -> list[str] | None:
        """The allowed countries of a channel; None: no list (see `deny_by_default`)."""
        listed = self.allowed_countries.get(channel.value)
        return listed if listed is not None else self.allowed_countries.get("*")


# --------------------------------------------------------------------- policy gates
def _number_type_name(number_type: int) -> str:
    for name, value in _NUMBER_TYPES.items():
        if value == number_type:
            return name
    return "UNKNOWN"


def evaluate(risk: RiskSettings, steps: Sequence[ChannelStep]) -> Refusal | None:
    """The policy gates (geo, number type, prefix) over every step of a plan; the first
    refusal, or None. Pure and of the same cost for every destination of a given shape.
    Email steps have no country, type or prefix: only the limits apply to them."""
    blocked_types = risk.blocked_types()
    for index, step in enumerate(steps):
        if not step.channel.is_phone:
            continue
        try:
            number = phonenumbers.parse(step.to, None)
        except phonenumbers.NumberParseException:
            return Refusal(RefusalReason.NUMBER_TYPE_BLOCKED, index, "UNKNOWN")
        country = phonenumbers.region_code_for_number(number) or ""
        allowed = risk.countries_for(step.channel)
        if (allowed is None and risk.deny_by_default) or (
            allowed is not None and country not in allowed
        ):
            return Refusal(RefusalReason.COUNTRY_NOT_ALLOWED, index, country or None)
        number_type = phonenumbers.number_type(number)
        if number_type in blocked_types:
            return Refusal(RefusalReason.NUMBER_TYPE_BLOCKED, index, _number_type_name(number_type))
        for prefix in risk.blocked_prefixes:
            if step.to.startswith(prefix):
                return Refusal(RefusalReason.PREFIX_BLOCKED, index, prefix)
    return None


# --------------------------------------------------------------------- limiter keys


def _keyed(secret: bytes, kind: str, value: str) -> str:
    digest = hmac.new(secret, _KEY_LABEL + b"|" + kind.encode() + b"|" + value.encode(), "sha256")
    return digest.hexdigest()[:32]


def ip_hash(secret: bytes, ip: str) -> str:
    """Keyed hash of a client IP (limiter keys never hold the address)."""
    return _keyed(secret, "ip", ip.strip().lower())


def user_hash(secret: bytes, user_id: str) -> str:
    """Keyed hash of a caller-supplied end-user id (never stored or logged in clear)."""
    return _keyed(secret, "usr", user_id)


def _scope(application_id: str, mode: Mode) -> str:
    return f"{application_id}:{mode.value}"


def failed_checks_key(application_id: str, mode: Mode, dst_hash: str) -> str:
    """The counter of wrong codes for one destination (a `destination_hash`)."""
    return f"{_scope(application_id, mode)}:fchk:{dst_hash}"


def destination_hashes(secret: bytes, steps: Iterable[ChannelStep]) -> list[str]:
    """The distinct keyed hashes of a plan's destinations, in plan order."""
    return list(dict.fromkeys(destination_hash(secret, step.to) for step in steps))


def send_hits(
    risk: RiskSettings,
    *,
    secret: bytes,
    application_id: str,
    mode: Mode,
    step: ChannelStep,
) -> list[Hit]:
    """The count limits one send charges (cost 1 each): destination, prefix, country.
    The delivery gate of resends and fallback sends charges these too."""
    scope = _scope(application_id, mode)
    hits: list[Hit] = []
    if risk.per_destination is not None:
        hits.append(
            Hit(
                f"{scope}:dst:{destination_hash(secret, step.to)}",
                risk.per_destination.named(LimitName.DESTINATION),
            )
        )
    prefix = number_prefix(step.to) if step.channel.is_phone else None
    country = country_of(step.to) if step.channel.is_phone else None
    if risk.per_prefix is not None and prefix is not None:
        hits.append(
            Hit(
                f"{scope}:pfx:{range_hash(secret, prefix)}",
                risk.per_prefix.named(LimitName.PREFIX),
            )
        )
    if risk.per_country_day is not None and country:
        hits.append(Hit(f"{scope}:cc:{country}", risk.per_country_day.named(LimitName.COUNTRY)))
    return hits


def create_hits(
    risk: RiskSettings,
    *,
    secret: bytes,
    application_id: str,
    mode: Mode,
    first_step: ChannelStep,
    client_ip: str | None,
    user_id: str | None,
) -> list[Hit]:
    """The count limits a create charges (cost 1 each): the first send's limits, then
    client IP, end user and application. The spend is charged apart (`otp.cost.caps`)."""
    scope = _scope(application_id, mode)
    hits = send_hits(
        risk,
        secret=secret,
        application_id=application_id,
        mode=mode,
        step=first_step,
    )
    if risk.per_ip is not None and client_ip:
        hits.append(
            Hit(f"{scope}:ip:{ip_hash(secret, client_ip)}", risk.per_ip.named(LimitName.IP))
        )
    if risk.per_user is not None and user_id:
        hits.append(
            Hit(f"{scope}:usr:{user_hash(secret, user_id)}", risk.per_user.named(LimitName.USER))
        )
    if risk.per_application is not None:
        hits.append(Hit(f"{scope}:app", risk.per_application.named(LimitName.APPLICATION)))
    return hits


# --------------------------------------------------------------------- gates with a limiter
@dataclass(frozen=True)
class CreateGate:
    """The outcome of a create's gates: a policy refusal (403), a full limit (429), or
    allowed with the tightest limit's decision (for the `RateLimit` headers)."""

    refusal: Refusal | None = None
    refused: tuple[Decision, ...] = ()
    tightest: Decision | None = None
    # A spend cap the first send would pass (429 `spend-cap-reached`).
    spend_refused: CapRefusal | None = None

    @property
    def allowed(self) -> bool:
        return self.refusal is None and not self.refused and self.spend_refused is None


def failed_check_keys(application_id: str, mode: Mode, hashes: Iterable[str]) -> list[str]:
    """The failed-check counters of these destinations (`destination_hash` values)."""
    return [failed_checks_key(application_id, mode, h) for h in hashes]


async def failed_checks_reached(limiter: Limiter, risk: RiskSettings, keys: Sequence[str]) -> bool:
    """Whether any of these counters is at `max_failed_checks`. Reads every counter,
    whatever the first answered: the same work for a fresh destination as for a known one."""
    values = [await limiter.get(key) for key in keys]
    return any(value >= risk.max_failed_checks for value in values)


async def note_check(
    limiter: Limiter,
    keys: Sequence[str],
    *,
    approved: bool,
    risk: RiskSettings | None = None,
) -> list[tuple[str, int]]:
    """Count a wrong code against every destination of the verification, or reset their
    counters after a correct one (always written: no shortcut for a zero counter).

    Returns the counters this wrong code brought to `max_failed_checks` (key, count):
    exactly one caller sees a counter reach the cap, so that caller records the lockout.
    A counter at the cap is counted once more with `lockout_duration_s` as its expiry
    (`incr` renews it): the lockout then ends on its own after that time, on either
    limiter backend, while counts below the cap are kept `FAILED_CHECKS_TTL_S`.
    """
    risk = risk or RiskSettings()
    reached: list[tuple[str, int]] = []
    for key in keys:
        if approved:
            await limiter.reset(key)
            continue
        value = await limiter.incr(key, ttl_s=FAILED_CHECKS_TTL_S)
        if value >= risk.max_failed_checks:
            await limiter.incr(key, ttl_s=risk.lockout_duration_s)
            if value == risk.max_failed_checks:
                reached.append((key, value))
    return reached


def is_safe_listed(safe: frozenset[str] | set[str], hashes: Iterable[str]) -> bool:
    """Whether every destination of a plan (its `destination_hash` values) is on the
    application's safe list."""
    listed = list(hashes)
    return bool(listed) and all(h in safe for h in listed)


async def gate_create(
    limiter: Limiter,
    risk: RiskSettings,
    *,
    secret: bytes,
    application_id: str,
    mode: Mode,
    steps: Sequence[ChannelStep],
    client_ip: str | None,
    user_id: str | None,
    member: str | None,
    safe_listed: bool = False,
    spend: SpendCharge | None = None,
) -> CreateGate:
    """Every gate of a create, in order: the policy (geo, number type, prefix), the
    failed-check cap of each destination, then the limits, charged all or nothing.

    A `safe_listed` create (every destination on the application's safe list) skips the
    per-destination, per-prefix, per-country, per-IP and per-user limits; the policy, the
    failed-check cap, the per-application limit and the spend still apply.

    Count limits cost 1 per create; then `spend` (the first send's estimate) is charged
    to the spend caps, only once the count limits allowed, so a refused create never
    spends. A `member` (the verification id of an Idempotency-Key) makes a retried create
    count once.
    """
    refusal = evaluate(risk, steps)
    if refusal is not None:
        return CreateGate(refusal=refusal)
    keys = failed_check_keys(application_id, mode, destination_hashes(secret, steps))
    if await failed_checks_reached(limiter, risk, keys):
        return CreateGate(refusal=Refusal(RefusalReason.FAILED_CHECKS_EXCEEDED))
    first = steps[0]
    hits = create_hits(
        risk,
        secret=secret,
        application_id=application_id,
        mode=mode,
        first_step=first,
        client_ip=client_ip,
        user_id=user_id,
    )
    if safe_listed:
        hits = [hit for hit in hits if hit.limit.name == LimitName.APPLICATION.value]
    decisions: list[Decision] = []
    if hits:
        decisions = await limiter.hit_all(hits, member=member)
        refused = tuple(d for d in decisions if not d.allowed)
        if refused:
            return CreateGate(refused=refused)
    if spend is not None:
        over = await charge(limiter, spend, member=member)
        if over is not None:
            return CreateGate(spend_refused=over)
    return CreateGate(tightest=tightest(decisions))


def tightest(decisions: Iterable[Decision]) -> Decision | None:
    """The decision with the least room left (ties: the smaller quota)."""
    return min(decisions, key=lambda d: (d.remaining, d.limit.limit), default=None)


# --------------------------------------------------------------------- RateLimit headers
def retry_after_s(refused: Sequence[Decision]) -> int:
    """Seconds until every refused limit has room again (at least 1)."""
    return max([1, *(d.reset_s for d in refused)])


def ratelimit_headers(decisions: Sequence[Decision]) -> dict[str, str]:
    """`RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers), e.g.
    `"destination";q=5;w=600` and `"destination";r=0;t=42`."""
    if not decisions:
        return {}
    return {
        "RateLimit-Policy": ", ".join(
            f'"{d.limit.name}";q={d.limit.limit};w={d.limit.window_s}' for d in decisions
        ),
        "RateLimit": ", ".join(
            f'"{d.limit.name}";r={max(0, d.remaining)};t={max(0, d.reset_s)}' for d in decisions
        ),
    }
