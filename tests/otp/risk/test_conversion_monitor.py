"""Conversion monitoring decisions on seeded verification records (SQLite)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from otp.domain import Channel, CodeType, DeliverInput, DeliveryKind, Mode
from otp.domain.destinations import range_hash
from otp.risk.conversion_monitor import (
    ConversionMonitor,
    ConversionSettings,
    DeliveryGate,
    GateRefusal,
    Stats,
    block_duration_s,
    must_block,
    scope_stats,
)
from otp.risk.limits.store import StoreLimiter
from otp.store import Store, VerificationRecord, utcnow
from otp.store.risk_blocks import BlockScope, lift_block, list_blocks

APP = "app_conv"
PREFIX = "+1415555"
SECRET = b"s" * 32
_ids = itertools.count()


@dataclass
class Clock:
    now: datetime
    mono: float = 0.0

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.mono += seconds


async def seed(
    store: Store,
    *,
    created: datetime,
    status: str = "pending",
    prefix: str | None = PREFIX,
    country: str | None = "US",
    finished: bool = False,
    mode: str = "test",
    app: str = APP,
    count: int = 1,
) -> list[str]:
    ids = []
    async with store.session() as session:
        for _ in range(count):
            vid = f"ver_seed{next(_ids)}"
            ids.append(vid)
            session.add(
                VerificationRecord(
                    id=vid,
                    application_id=app,
                    mode=mode,
                    status=status,
                    first_channel="sms",
                    channel="sms",
                    country=country,
                    prefix_hash=range_hash(SECRET, prefix) if prefix else None,
                    created_at=created,
                    expires_at=created + timedelta(minutes=10),
                    finished_at=created + timedelta(seconds=30) if finished else None,
                )
            )
        await session.commit()
    return ids


def test_decision_rule() -> None:
    assert not must_block(Stats(19, 0), threshold=0.2, min_volume=20)  # too few to judge
    assert must_block(Stats(20, 0), threshold=0.2, min_volume=20)
    assert must_block(Stats(20, 3), threshold=0.2, min_volume=20)  # 15 %
    assert not must_block(Stats(20, 4), threshold=0.2, min_volume=20)  # exactly 20 %: fine
    assert not must_block(Stats(100, 80), threshold=0.2, min_volume=20)
    assert not must_block(Stats(0, 0), threshold=0.2, min_volume=1)
    assert Stats(4, 1).conversion == 0.25 and Stats(0, 0).conversion is None


def test_escalating_durations() -> None:
    durations = ConversionSettings().block_durations_s
    assert [block_duration_s(durations, level) for level in range(1, 7)] == [
        3600,
        6 * 3600,
        24 * 3600,
        7 * 24 * 3600,
        7 * 24 * 3600,  # the last one repeats
        7 * 24 * 3600,
    ]
    assert block_duration_s((), 3) is None  # none configured: until lifted


def test_settings_from_risk_settings() -> None:
    @dataclass
    class Risk:
        conversion_min_volume: int = 7
        conversion_threshold: float = 0.5
        block_durations_s: tuple[int, ...] = (60, 120)
        unrelated: str = "x"

    settings = ConversionSettings.of(Risk())
    assert (settings.min_volume, settings.threshold) == (7, 0.5)
    assert settings.block_durations_s == (60, 120)
    assert settings.window_s == 3600 and settings.grace_s == 120  # the defaults
    assert ConversionSettings.of(None) == ConversionSettings()


async def test_stats_count_only_judged_unblocked_records_in_the_window(store: Store) -> None:
    now = utcnow()
    minute = timedelta(minutes=1)
    await seed(store, created=now - 10 * minute, count=6)  # old enough, pending: unapproved
    await seed(store, created=now - 10 * minute, status="approved", finished=True, count=2)
    await seed(store, created=now - 30 * 1 * timedelta(seconds=1), count=5)  # fresh: not judged
    # Fresh but finished: judged.
    await seed(store, created=now - timedelta(seconds=30), status="expired", finished=True)
    await seed(store, created=now - 10 * minute, status="blocked", finished=True, count=4)
    await seed(store, created=now - 2 * timedelta(hours=1), count=9)  # outside the window
    await seed(store, created=now - 10 * minute, prefix="+1415556", count=3)  # other prefix
    await seed(store, created=now - 10 * minute, mode="live", count=3)  # other mode
    await seed(store, created=now - 10 * minute, app="app_other", count=3)  # other application
    excluded = await seed(store, created=now - 10 * minute)

    async def stats(scope: BlockScope, value: str, exclude: str | None = None) -> Stats:
        return await scope_stats(
            store,
            application_id=APP,
            mode="test",
            scope=scope,
            value=value,
            since=now - timedelta(hours=1),
            judged_before=now - timedelta(seconds=120),
            now=now,
            exclude_id=exclude,
        )

    prefix = range_hash(SECRET, PREFIX)
    assert await stats(BlockScope.PREFIX, prefix, excluded[0]) == Stats(started=9, approved=2)
    assert await stats(BlockScope.PREFIX, prefix) == Stats(started=10, approved=2)
    assert await stats(BlockScope.COUNTRY, "US") == Stats(started=13, approved=2)
    assert await stats(BlockScope.PREFIX, range_hash(SECRET, "+4477")) == Stats(0, 0)


def _monitor(store: Store, clock: Clock) -> ConversionMonitor:
    return ConversionMonitor(store, secret=SECRET, clock=clock, monotonic=clock.monotonic)


async def _refuse(
    monitor: ConversionMonitor,
    settings: ConversionSettings,
    *,
    prefix: str = PREFIX,
    country: str | None = "US",
    verification_id: str = "ver_current",
) -> str | None:
    block = await monitor.refusal(
        application_id=APP,
        mode="test",
        verification_id=verification_id,
        country=country,
        prefix=prefix,
        settings=settings,
    )
    return block.id if block else None


async def test_known_answers_min_volume_and_threshold(store: Store) -> None:
    clock = Clock(utcnow())
    settings = ConversionSettings(min_volume=5, threshold=0.3, grace_s=60, cache_s=0)
    monitor = _monitor(store, clock)
    old = clock.now - timedelta(minutes=5)
    await seed(store, created=old, count=3)
    await seed(store, created=old, status="approved", finished=True, count=1)
    # 4 judged, 1 approved: below min volume.
    assert await _refuse(monitor, settings) is None
    await seed(store, created=old, status="approved", finished=True, count=1)
    # 5 judged, 2 approved: 40 % >= 30 %.
    assert await _refuse(monitor, settings) is None
    await seed(store, created=clock.now - timedelta(seconds=10), count=5)
    # Fresh ones are not judged yet...
    assert await _refuse(monitor, settings) is None
    clock.advance(61)
    # ...then they are: 10 judged, 2 approved = 20 % < 30 %.
    blocked = await _refuse(monitor, settings)
    assert blocked is not None
    [block] = await list_blocks(store, application_id=APP, mode="test")
    # The block shows only a short range (country code and 3 digits); it matches the hash.
    assert (block.id, block.scope, block.value, block.level) == (blocked, "prefix", "+1415", 1)
    assert block.value_hash == range_hash(SECRET, PREFIX)
    assert block.automatic and block.expires_at == clock.now + timedelta(hours=1)
    assert "2 of 10 verifications to this prefix approved (20 %)" in block.reason
    # In force for the prefix (and any number in it), not for the next range.
    assert await _refuse(monitor, settings, verification_id="ver_other") == blocked
    assert await _refuse(monitor, settings, prefix="+1415556") is None


async def test_escalation_and_lifting(store: Store) -> None:
    clock = Clock(utcnow())
    settings = ConversionSettings(min_volume=3, grace_s=0, cache_s=0)
    monitor = _monitor(store, clock)
    levels = []
    for _ in range(5):
        await seed(store, created=clock.now - timedelta(seconds=1), count=3)
        block_id = await _refuse(monitor, settings)
        assert block_id is not None
        [latest, *_] = await list_blocks(store, application_id=APP, mode="test")
        assert latest.id == block_id
        assert latest.expires_at is not None
        levels.append((latest.level, int((latest.expires_at - latest.created_at).total_seconds())))
        # Still refused until it ends; evidence from before it ended is spent.
        assert await _refuse(monitor, settings) == block_id
        if len(levels) % 2:
            assert await lift_block(store, block_id=block_id, lifted_by="ops", now=clock.now)
        else:
            clock.advance(latest.expires_at.timestamp() - clock.now.timestamp() + 1)
        clock.advance(1)
        assert await _refuse(monitor, settings) is None  # through again after it ended
    hour = 3600
    assert levels == [
        (1, hour),
        (2, 6 * hour),
        (3, 24 * hour),
        (4, 7 * 24 * hour),
        (5, 7 * 24 * hour),
    ]


async def test_escalation_forgets_blocks_past_the_lookback(store: Store) -> None:
    clock = Clock(utcnow())
    settings = ConversionSettings(
        min_volume=2, grace_s=0, cache_s=0, escalation_lookback_s=24 * 3600
    )
    monitor = _monitor(store, clock)
    await seed(store, created=clock.now - timedelta(seconds=1), count=2)
    first = await _refuse(monitor, settings)
    assert first is not None
    clock.advance(2 * 24 * 3600)
    await seed(store, created=clock.now - timedelta(seconds=1), count=2)
    second = await _refuse(monitor, settings)
    [latest, _] = await list_blocks(store, application_id=APP, mode="test")
    assert latest.id == second and latest.level == 1


async def test_country_needs_its_own_volume(store: Store) -> None:
    clock = Clock(utcnow())
    settings = ConversionSettings(min_volume=100, country_min_volume=6, grace_s=0, cache_s=0)
    monitor = _monitor(store, clock)
    # Spread over many prefixes: no prefix reaches its volume, the country does.
    for n in range(6):
        await seed(store, created=clock.now - timedelta(seconds=1), prefix=f"+14155{n:02d}")
    blocked = await _refuse(monitor, settings, prefix="+1415599")
    [block] = await list_blocks(store, application_id=APP, mode="test")
    assert block.id == blocked and (block.scope, block.value) == ("country", "US")
    assert await _refuse(monitor, settings, prefix="+1212555") == blocked


async def test_disabled_monitoring_still_honours_blocks(store: Store) -> None:
    clock = Clock(utcnow())
    monitor = _monitor(store, clock)
    await seed(store, created=clock.now - timedelta(seconds=1), count=10)
    off = ConversionSettings(enabled=False, min_volume=2, grace_s=0)
    assert await _refuse(monitor, off) is None
    on = ConversionSettings(min_volume=2, grace_s=0, cache_s=0)
    blocked = await _refuse(monitor, on)
    assert blocked is not None
    assert await _refuse(monitor, off) == blocked


@dataclass
class Queries:
    count: int = 0


@pytest.fixture
def queries(monkeypatch: pytest.MonkeyPatch) -> Queries:
    """Counts the monitor's reads of a scope's counts from the store."""
    import otp.risk.conversion_monitor as conversion

    counted = Queries()
    real = conversion.scope_stats

    async def counting(*args: object, **kwargs: object) -> Stats:
        counted.count += 1
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(conversion, "scope_stats", counting)
    return counted


async def test_a_burst_is_blocked_after_exactly_min_volume_with_few_queries(
    store: Store, queries: Queries
) -> None:
    """Within one process the cache never lets a send past the threshold."""
    clock = Clock(utcnow())
    settings = ConversionSettings(min_volume=5, grace_s=0, country_min_volume=1000)
    monitor = _monitor(store, clock)
    sent = 0
    for _ in range(12):
        [vid] = await seed(store, created=clock.now)
        clock.advance(0.1)
        if await _refuse(monitor, settings, verification_id=vid) is None:
            sent += 1
    assert sent == 5
    # First sight of each scope, the decision point, then nothing (the block answers).
    assert queries.count <= 4


def _deliver_input(**overrides: object) -> DeliverInput:
    data: dict[str, object] = {
        "verification_id": "ver_gate",
        "application_id": APP,
        "mode": Mode.TEST,
        "step_index": 0,
        "channel": Channel.SMS,
        "to": "+14155550123",
        "nonce": "00",
        "code_length": 6,
        "code_type": CodeType.NUMERIC,
        "expires_at": utcnow() + timedelta(minutes=10),
        "country": "US",
    }
    data.update(overrides)
    return DeliverInput.model_validate(data)


async def test_the_gate_charges_only_sends_the_api_did_not_count(store: Store) -> None:
    """Default limits: 5 sends per destination per 10 min; the member makes retries free."""
    gate = DeliveryGate(store, StoreLimiter(store), secret=SECRET)
    for _ in range(8):  # first sends: charged by the API at create, not here
        assert await gate.refusal(_deliver_input(precounted=True), member="first") is None
    resend = _deliver_input(kind=DeliveryKind.RESEND)
    for n in range(5):
        assert await gate.refusal(resend, member=f"ver_gate:run:{n}") is None
        # The same delivery retried by Temporal is not counted again.
        assert await gate.refusal(resend, member=f"ver_gate:run:{n}") is None
    refusal = await gate.refusal(resend, member="ver_gate:run:5")
    assert refusal is not None and refusal.is_limit
    assert refusal == GateRefusal(
        "velocity limit: 5 sends per 10 min to this destination",
        "destination_limit",
        limit="destination",
        retry_after_s=refusal.retry_after_s,
    )
    assert refusal.retry_after_s is not None and 1 <= refusal.retry_after_s <= 600
    # Another destination has its own count (email has no prefix, country or cost).
    email = _deliver_input(channel=Channel.EMAIL, to="a@example.com", kind=DeliveryKind.RESEND)
    assert await gate.refusal(email, member="ver_gate:run:6") is None


async def test_the_gate_uses_the_application_risk_settings(store: Store) -> None:
    from otp.risk.policy import Rate, RiskSettings
    from otp.store.applications import create_application

    application = await create_application(
        store,
        name="tight",
        risk=RiskSettings(per_destination=None, per_prefix=Rate(limit=2, window_s=60)),
    )
    gate = DeliveryGate(store, StoreLimiter(store), secret=SECRET)

    def fallback(to: str) -> DeliverInput:
        return _deliver_input(application_id=application.id, to=to, step_index=1)

    assert await gate.refusal(fallback("+14155550123"), member="a") is None
    assert await gate.refusal(fallback("+14155550124"), member="b") is None
    refusal = await gate.refusal(fallback("+14155550125"), member="c")
    assert refusal is not None and refusal.limit == "prefix"
    assert (refusal.reason, refusal.code) == (
        "velocity limit: 2 sends per 1 min to this number range",
        "prefix_limit",
    )
    assert refusal.retry_after_s is not None and 1 <= refusal.retry_after_s <= 60


async def test_the_gate_refuses_blocked_scopes_on_phone_channels_only(store: Store) -> None:
    from otp.store.risk_blocks import create_block

    block = await create_block(
        store,
        application_id=APP,
        mode="test",
        scope="country",
        value="US",
        reason="manual: fraud wave",
        automatic=False,
    )
    gate = DeliveryGate(store, None, secret=SECRET)
    refusal = await gate.refusal(_deliver_input(precounted=True), member="k")
    assert refusal == GateRefusal(
        f"risk block {block.id} on country US: manual: fraud wave", "country_blocked"
    )
    assert not refusal.is_limit and refusal.retry_after_s is None
    email = _deliver_input(channel=Channel.EMAIL, to="a@example.com", precounted=True)
    assert await gate.refusal(email, member="k") is None


def test_an_application_tunes_monitoring_through_its_risk_settings() -> None:
    from otp.risk.policy import RiskSettings

    tuned = ConversionSettings.of(
        RiskSettings(conversion_min_volume=5, conversion_threshold=0.5, block_durations_s=[60])
    )
    assert (tuned.min_volume, tuned.threshold, tuned.block_durations_s) == (5, 0.5, (60,))
    assert ConversionSettings.of(RiskSettings()) == ConversionSettings()
    assert not ConversionSettings.of(RiskSettings(conversion_enabled=False)).enabled


async def test_the_gate_lets_safe_listed_resends_past_send_limits_and_automatic_blocks(
    store: Store,
) -> None:
    """A safe-listed destination: no send limits, no automatic block; a manual block
    still applies."""
    from otp.risk.policy import Rate, RiskSettings
    from otp.store.applications import create_application
    from otp.store.events import destination_hash
    from otp.store.risk_blocks import create_block
    from otp.store.safe_list import add_entry

    secret = b"s" * 32
    application = await create_application(
        store,
        name="staff",
        risk=RiskSettings(per_destination=Rate(limit=1, window_s=600)),
    )
    staff, other = "+14155550123", "+14155550124"
    await add_entry(
        store,
        application_id=application.id,
        mode="test",
        destination_hash=destination_hash(secret, staff),
        to_masked="+1415*****23",
    )
    await create_block(
        store,
        application_id=application.id,
        mode="test",
        scope="prefix",
        value=PREFIX,
        reason="conversion monitoring",
        automatic=True,
        duration_s=3600,
    )
    gate = DeliveryGate(store, StoreLimiter(store), secret=secret)

    def resend(to: str) -> DeliverInput:
        return _deliver_input(application_id=application.id, to=to, kind=DeliveryKind.RESEND)

    refused = await gate.refusal(resend(other), member="o")
    assert refused is not None and refused.code == "low_conversion"
    for n in range(3):  # past the destination limit of 1
        assert await gate.refusal(resend(staff), member=f"s{n}") is None
    limited = await gate.refusal(resend(other), member="o2")
    assert limited is not None
    manual = await create_block(
        store,
        application_id=application.id,
        mode="test",
        scope="country",
        value="US",
        reason="manual",
        automatic=False,
    )
    refusal = await gate.refusal(
        _deliver_input(application_id=application.id, precounted=True), member="m"
    )
    assert refusal is not None and manual.id in refusal.reason


async def test_a_scope_is_read_again_once_its_cache_time_has_passed(
    store: Store, queries: Queries
) -> None:
    clock = Clock(utcnow())
    settings = ConversionSettings(min_volume=1000, grace_s=0, country_min_volume=1000, cache_s=30)
    monitor = _monitor(store, clock)
    [vid] = await seed(store, created=clock.now)
    assert await _refuse(monitor, settings, verification_id=vid) is None
    assert queries.count == 2  # the range and the country
    clock.advance(29)
    assert await _refuse(monitor, settings, verification_id="ver_second") is None
    assert queries.count == 2  # both answered from the cache
    clock.advance(2)
    assert await _refuse(monitor, settings, verification_id="ver_third") is None
    assert queries.count == 4
    monitor.forget()
    assert await _refuse(monitor, settings, verification_id="ver_fourth") is None
    assert queries.count == 6
