"""The risk policy: settings, policy gates, limiter keys and the create/check gates."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType
from pydantic import ValidationError

from otp.domain import Channel, ChannelStep, Mode
from otp.domain.destinations import range_hash
from otp.risk import policy as risk
from otp.risk.limits import Budget, Decision, Hit
from otp.risk.policy import Rate, RefusalReason, RiskSettings
from otp.store.events import destination_hash

SECRET = b"s" * 32
APP = "app_aaaaaaaaaaaaaaaaaaaaaaaaaa"
MOBILE_US = "+14155550123"


def example(region: str, number_type: int) -> str:
    number = phonenumbers.example_number_for_type(region, number_type)
    assert number is not None, (region, number_type)
    assert phonenumbers.number_type(number) == number_type
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def step(to: str, channel: Channel = Channel.SMS) -> ChannelStep:
    return ChannelStep(channel=channel, to=to)


class FakeLimiter:
    """An in-memory `Limiter`: exact sliding windows, all-or-nothing, idempotent members."""

    def __init__(self) -> None:
        self.hits: dict[str, list[tuple[float, int, str | None]]] = {}
        self.counters: dict[str, int] = {}
        self.calls: list[str] = []

    def _decide(self, hits: Sequence[Hit], cost: int, now: float) -> list[Decision]:
        decisions = []
        for hit in hits:
            window = [e for e in self.hits.get(hit.key, []) if e[0] > now - hit.limit.window_s]
            used = sum(c for _, c, _ in window)
            allowed = used + cost <= hit.limit.limit
            remaining = hit.limit.limit - used - (cost if allowed else 0)
            reset = 0 if allowed else math.ceil(window[0][0] + hit.limit.window_s - now)
            decisions.append(Decision(hit.limit, allowed, max(0, remaining), reset))
        return decisions

    async def hit_all(
        self, hits: Sequence[Hit], *, cost: int = 1, member: str | None = None
    ) -> list[Decision]:
        self.calls.append(f"hit_all:{cost}")
        now = time.time()
        if member is not None and all(
            any(e[2] == member for e in self.hits.get(h.key, [])) for h in hits
        ):
            return [Decision(h.limit, True, h.limit.limit, 0) for h in hits]
        decisions = self._decide(hits, cost, now)
        if all(d.allowed for d in decisions):
            for hit in hits:
                self.hits.setdefault(hit.key, []).append((now, cost, member))
        return decisions

    async def peek(self, hits: Sequence[Hit], *, cost: int = 1) -> list[Decision]:
        return self._decide(hits, cost, time.time())

    async def charge(
        self,
        budgets: Sequence[Budget],
        *,
        cost: int,
        member: str | None = None,
        force: bool = False,
    ) -> list[Decision]:
        self.calls.append(f"charge:{cost}")
        known = {b.key for b in budgets if member and f"{b.key}|{member}" in self.counters}
        room = [
            force or b.key in known or self.counters.get(b.key, 0) + cost <= b.limit.limit
            for b in budgets
        ]
        if all(room):
            for b in budgets:
                if b.key not in known:
                    self.counters[b.key] = self.counters.get(b.key, 0) + cost
                    if member:
                        self.counters[f"{b.key}|{member}"] = cost
        return [
            Decision(
                b.limit, ok, max(0, b.limit.limit - self.counters.get(b.key, 0)), 0 if ok else 1
            )
            for b, ok in zip(budgets, room, strict=True)
        ]

    async def incr(self, key: str, *, ttl_s: int | None = None) -> int:
        self.calls.append("incr")
        self.counters[key] = self.counters.get(key, 0) + 1
        return self.counters[key]

    async def get(self, key: str) -> int:
        self.calls.append("get")
        return self.counters.get(key, 0)

    async def reset(self, key: str) -> None:
        self.calls.append("reset")
        self.counters.pop(key, None)

    async def close(self) -> None:
        return None


# ------------------------------------------------------------------------- settings
def test_empty_column_gives_the_safe_defaults() -> None:
    settings = RiskSettings.of({})
    assert settings == RiskSettings()
    assert settings.per_destination == Rate(limit=5, window_s=600)
    assert settings.max_failed_checks == 100
    assert settings.blocked_number_types == ["PREMIUM_RATE", "SHARED_COST", "UAN"]
    assert settings.block_voip is False and settings.deny_by_default is False
    assert settings.spend_caps.daily == "1000.00" and settings.spend_caps.monthly == "20000.00"
    assert settings.spend_caps.per_verification is None
    assert settings.resend_backoff == 2.0


def test_settings_are_validated() -> None:
    assert RiskSettings(allowed_countries={"sms": ["us", " ca"]}).allowed_countries == {
        "sms": ["US", "CA"]
    }
    with pytest.raises(ValidationError):
        RiskSettings(allowed_countries={"email": ["US"]})
    with pytest.raises(ValidationError):
        RiskSettings(allowed_countries={"sms": ["USA"]})
    with pytest.raises(ValidationError):
        RiskSettings(blocked_number_types=["EXPENSIVE"])
    with pytest.raises(ValidationError):
        RiskSettings(blocked_prefixes=["8823"])
    with pytest.raises(ValidationError):
        RiskSettings.model_validate({"per_destination": {"limit": 0, "window_s": 60}})
    with pytest.raises(ValidationError):
        RiskSettings.model_validate({"unknown": 1})
    off = RiskSettings.model_validate({"per_ip": None})
    assert off.per_ip is None


# ------------------------------------------------------------------------- policy gates
@pytest.mark.parametrize(
    ("region", "number_type"),
    [
        ("US", PhoneNumberType.PREMIUM_RATE),
        ("GB", PhoneNumberType.PREMIUM_RATE),
        ("FR", PhoneNumberType.PREMIUM_RATE),
        ("DE", PhoneNumberType.SHARED_COST),
        ("ES", PhoneNumberType.SHARED_COST),
        ("FR", PhoneNumberType.UAN),
        ("GB", PhoneNumberType.UAN),
    ],
)
@pytest.mark.parametrize("channel", [Channel.SMS, Channel.VOICE, Channel.WHATSAPP])
def test_costly_number_types_are_refused_on_phone_channels(
    region: str, number_type: int, channel: Channel
) -> None:
    refusal = risk.evaluate(RiskSettings(), [step(example(region, number_type), channel)])
    assert refusal is not None
    assert refusal.reason is RefusalReason.NUMBER_TYPE_BLOCKED
    assert refusal.step_index == 0


@pytest.mark.parametrize(
    ("region", "number_type"),
    [
        ("GB", PhoneNumberType.MOBILE),
        ("FR", PhoneNumberType.MOBILE),
        ("DE", PhoneNumberType.MOBILE),
        ("US", PhoneNumberType.FIXED_LINE_OR_MOBILE),
        ("GB", PhoneNumberType.VOIP),
        ("US", PhoneNumberType.TOLL_FREE),
    ],
)
def test_ordinary_numbers_pass_by_default(region: str, number_type: int) -> None:
    assert risk.evaluate(RiskSettings(), [step(example(region, number_type))]) is None


def test_voip_is_refused_only_when_asked() -> None:
    voip = example("GB", PhoneNumberType.VOIP)
    assert risk.evaluate(RiskSettings(), [step(voip)]) is None
    refusal = risk.evaluate(RiskSettings(block_voip=True), [step(voip)])
    assert refusal is not None and refusal.detail == "VOIP"


def test_number_types_can_be_allowed_again() -> None:
    premium = example("GB", PhoneNumberType.PREMIUM_RATE)
    assert risk.evaluate(RiskSettings(blocked_number_types=[]), [step(premium)]) is None


def test_geo_permissions_per_channel_and_wildcard() -> None:
    settings = RiskSettings(allowed_countries={"sms": ["US", "CA"], "*": ["GB"]})
    gb = example("GB", PhoneNumberType.MOBILE)
    assert risk.evaluate(settings, [step(MOBILE_US)]) is None
    refusal = risk.evaluate(settings, [step(gb)])
    assert refusal is not None
    assert (refusal.reason, refusal.detail) == (RefusalReason.COUNTRY_NOT_ALLOWED, "GB")
    assert risk.evaluate(settings, [step(gb, Channel.VOICE)]) is None
    refusal = risk.evaluate(settings, [step(gb, Channel.VOICE), step(MOBILE_US, Channel.VOICE)])
    assert refusal is not None and refusal.step_index == 1


def test_deny_by_default_refuses_channels_without_a_list() -> None:
    settings = RiskSettings(allowed_countries={"sms": ["US"]}, deny_by_default=True)
    assert risk.evaluate(settings, [step(MOBILE_US)]) is None
    refusal = risk.evaluate(settings, [step(MOBILE_US, Channel.VOICE)])
    assert refusal is not None and refusal.reason is RefusalReason.COUNTRY_NOT_ALLOWED
    # Email has no country: only the limits apply to it.
    assert risk.evaluate(settings, [step("jane@example.com", Channel.EMAIL)]) is None
    # Without deny_by_default, a channel without a list allows every country.
    assert (
        risk.evaluate(
            RiskSettings(allowed_countries={"sms": ["US"]}), [step(MOBILE_US, Channel.VOICE)]
        )
        is None
    )


def test_blocked_prefixes() -> None:
    settings = RiskSettings(blocked_prefixes=["+1415555"])
    refusal = risk.evaluate(settings, [step(MOBILE_US)])
    assert refusal is not None
    assert (refusal.reason, refusal.detail) == (RefusalReason.PREFIX_BLOCKED, "+1415555")
    assert risk.evaluate(settings, [step("+14155560123")]) is None
    assert risk.evaluate(RiskSettings(blocked_prefixes=["+14155550124"]), [step(MOBILE_US)]) is None


# ------------------------------------------------------------------------- keys
def test_keys_never_hold_a_destination_ip_or_user_id() -> None:
    hits = risk.create_hits(
        RiskSettings(),
        secret=SECRET,
        application_id=APP,
        mode=Mode.LIVE,
        first_step=step(MOBILE_US),
        client_ip="203.0.113.7",
        user_id="jane-42",
    )
    names = [h.limit.name for h in hits]
    assert names == ["destination", "prefix", "country", "ip", "user", "application"]
    keys = " ".join(h.key for h in hits)
    for secret_value in (MOBILE_US, MOBILE_US[1:], "203.0.113.7", "jane-42"):
        assert secret_value not in keys
    assert all(h.key.startswith(f"{APP}:live:") for h in hits)
    assert hits[0].key.endswith(destination_hash(SECRET, MOBILE_US))
    # The number range only as its keyed hash.
    assert "+1415555" not in keys and "1415555" not in keys
    assert hits[1].key.endswith(f":pfx:{range_hash(SECRET, '+1415555')}")
    assert hits[2].key.endswith(":cc:US")
    assert all(len(h.key) <= 200 for h in hits)


def test_keys_are_scoped_per_application_and_mode() -> None:
    def keys(application_id: str, mode: Mode) -> set[str]:
        return {
            h.key
            for h in risk.create_hits(
                RiskSettings(),
                secret=SECRET,
                application_id=application_id,
                mode=mode,
                first_step=step(MOBILE_US),
                client_ip="203.0.113.7",
                user_id="u",
            )
        }

    assert not keys(APP, Mode.LIVE) & keys(APP, Mode.TEST)
    assert not keys(APP, Mode.LIVE) & keys("default", Mode.LIVE)


def test_email_has_no_prefix_or_country_and_disabled_limits_have_no_hit() -> None:
    settings = RiskSettings(per_ip=None, per_application=None)
    hits = risk.create_hits(
        settings,
        secret=SECRET,
        application_id=APP,
        mode=Mode.TEST,
        first_step=step("Jane@Example.com", Channel.EMAIL),
        client_ip="203.0.113.7",
        user_id=None,
    )
    assert [h.limit.name for h in hits] == ["destination"]


# ------------------------------------------------------------------------- gates
async def _gate(
    limiter: FakeLimiter,
    settings: RiskSettings,
    to: str = MOBILE_US,
    channel: Channel = Channel.SMS,
    *,
    member: str | None = None,
    user_id: str | None = None,
) -> risk.CreateGate:
    return await risk.gate_create(
        limiter,
        settings,
        secret=SECRET,
        application_id=APP,
        mode=Mode.TEST,
        steps=[step(to, channel)],
        client_ip="203.0.113.7",
        user_id=user_id,
        member=member,
    )


async def test_destination_limit_refuses_exactly_past_its_threshold() -> None:
    limiter = FakeLimiter()
    settings = RiskSettings()
    for n in range(5):
        gate = await _gate(limiter, settings)
        assert gate.allowed, n
        assert gate.tightest is not None and gate.tightest.limit.name == "destination"
        assert gate.tightest.remaining == 4 - n
    refused = await _gate(limiter, settings)
    assert not refused.allowed
    assert [d.limit.name for d in refused.refused] == ["destination"]
    assert 1 <= risk.retry_after_s(refused.refused) <= 600
    # Another destination is not affected.
    assert (await _gate(limiter, settings, "+14155550124")).allowed


@pytest.mark.parametrize(
    ("field", "kwargs", "name"),
    [
        ("per_prefix", {}, "prefix"),
        ("per_country_day", {}, "country"),
        ("per_ip", {}, "ip"),
        ("per_user", {"user_id": "jane"}, "user"),
        ("per_application", {}, "application"),
    ],
)
async def test_each_limit_refuses_exactly_at_its_threshold(
    field: str, kwargs: dict[str, str], name: str
) -> None:
    settings = RiskSettings.model_validate({field: {"limit": 3, "window_s": 3600}})
    limiter = FakeLimiter()
    numbers = [f"+1415555{n:04d}" for n in range(100, 104)]
    for to in numbers[:3]:
        assert (await _gate(limiter, settings, to, **kwargs)).allowed  # type: ignore[arg-type]
    refused = await _gate(limiter, settings, numbers[3], **kwargs)  # type: ignore[arg-type]
    assert [d.limit.name for d in refused.refused] == [name]


def test_cost_units_are_refused_with_what_replaced_them() -> None:
    with pytest.raises(ValueError, match="replaced by `spend_caps`"):
        RiskSettings.model_validate({"daily_spend": {"limit": 7, "window_s": 86400}})


async def test_a_member_counts_once() -> None:
    limiter = FakeLimiter()
    settings = RiskSettings()
    for _ in range(10):
        assert (await _gate(limiter, settings, member="ver_same")).allowed
    for _ in range(4):
        assert (await _gate(limiter, settings)).allowed
    assert not (await _gate(limiter, settings)).allowed


async def test_policy_refusal_comes_first_and_charges_nothing() -> None:
    limiter = FakeLimiter()
    gate = await _gate(limiter, RiskSettings(), example("GB", PhoneNumberType.PREMIUM_RATE))
    assert gate.refusal is not None and gate.refusal.reason is RefusalReason.NUMBER_TYPE_BLOCKED
    assert limiter.calls == [] and limiter.hits == {}


async def test_failed_checks_cap_counts_across_verifications_and_resets() -> None:
    limiter = FakeLimiter()
    settings = RiskSettings(max_failed_checks=3, per_destination=None)
    keys = risk.failed_check_keys(APP, Mode.TEST, [destination_hash(SECRET, MOBILE_US)])
    for n in range(3):
        assert not await risk.failed_checks_reached(limiter, settings, keys), n
        assert (await _gate(limiter, settings)).allowed
        await risk.note_check(limiter, keys, approved=False)
    assert await risk.failed_checks_reached(limiter, settings, keys)
    gate = await _gate(limiter, settings)
    assert gate.refusal is not None
    assert gate.refusal.reason is RefusalReason.FAILED_CHECKS_EXCEEDED
    await risk.note_check(limiter, keys, approved=True)
    assert not await risk.failed_checks_reached(limiter, settings, keys)
    assert (await _gate(limiter, settings)).allowed


async def test_gates_do_the_same_work_for_known_and_fresh_destinations() -> None:
    settings = RiskSettings(per_destination=Rate(limit=1000, window_s=600))
    limiter = FakeLimiter()
    keys = risk.failed_check_keys(APP, Mode.TEST, [destination_hash(SECRET, MOBILE_US)])
    await risk.note_check(limiter, keys, approved=False)
    await _gate(limiter, settings)
    limiter.calls.clear()
    await _gate(limiter, settings)
    known = list(limiter.calls)
    limiter.calls.clear()
    await _gate(limiter, settings, "+14155550999")
    assert limiter.calls == known
    limiter.calls.clear()
    await risk.note_check(limiter, keys, approved=True)  # counter at 1
    await risk.note_check(limiter, keys, approved=True)  # counter absent
    assert limiter.calls == ["reset", "reset"]


def test_ratelimit_headers() -> None:
    limit = risk.Rate(limit=5, window_s=600).named(risk.LimitName.DESTINATION)
    headers = risk.ratelimit_headers([Decision(limit, False, 0, 42)])
    assert headers == {
        "RateLimit-Policy": '"destination";q=5;w=600',
        "RateLimit": '"destination";r=0;t=42',
    }
    assert risk.ratelimit_headers([]) == {}
    assert risk.retry_after_s([Decision(limit, False, 0, 0)]) == 1
