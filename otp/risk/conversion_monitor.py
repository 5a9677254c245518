"""Conversion monitoring: block a number prefix or country that receives codes nobody enters.

SMS pumping (artificially inflated traffic) starts verifications to number ranges an
attacker is paid for and never checks a code. Its signature is a conversion rate
(approved ÷ started) near zero where real users convert at 60-90 %. For one application
and mode, over a rolling window (`window_s`, default 1 h), per number range (the number
without its last 4 digits, known to the store only by its keyed hash, `range_hash`) and
per country:

- only verifications that have had their chance are judged: finished ones, and pending
  ones created more than `grace_s` (default 120 s) ago. A fresh legitimate burst (a
  marketing push) is not judged before its users have typed their codes;
- verifications that were themselves blocked are not counted (they never got a code),
  nor is anything created before the scope's previous block ended: the evidence that
  caused a block is spent on it, so lifting a block lets traffic through again;
- a scope with at least `min_volume` judged verifications (default 20; countries
  `country_min_volume`, default 100) and a conversion below `threshold` (default 0.2)
  is blocked for that application and mode. Durations escalate with each automatic
  block of the same scope within `escalation_lookback_s` (default 30 days):
  1 h, 6 h, 24 h, then 7 days (`block_durations_s`).

Where it runs: in the delivery activity's gate, before any provider call
(`ConversionMonitor.refusal`). So a scripted burst to one prefix with no approvals gets
exactly `min_volume` sends (when they are judged in time); the next delivery creates the
block and is refused, and so is every later one, with no further provider call. The
aggregate query per scope is skipped while a cached answer (`cache_s`, default 5 s) plus
the verifications this process has let through since cannot reach a decision: queries
stay rare for healthy traffic and the threshold is exact within one worker process.

An automatic range block holds the range's keyed hash, which matching uses, and only a
short clear range (`short_range`: the country code and a few digits) for operators.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cachetools import TLRUCache, TTLCache
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import case, func
from sqlmodel import col, select

from otp.domain import ChannelStep, DeliverInput
from otp.domain.destinations import country_of, number_prefix, range_hash, short_range
from otp.risk.limits import Decision, Limiter
from otp.risk.policy import LimitName, RiskSettings, send_hits
from otp.store import Store
from otp.store import risk_blocks as blocks
from otp.store.events import destination_hash
from otp.store.risk_blocks import BlockScope
from otp.store.tables import RiskBlock, VerificationRecord, utcnow

logger = logging.getLogger("otp.risk.policy")

HOUR = 3600
DEFAULT_BLOCK_DURATIONS_S = (HOUR, 6 * HOUR, 24 * HOUR, 7 * 24 * HOUR)


class ConversionSettings(BaseModel):
    """Conversion monitoring of one application (from its risk settings)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    enabled: bool = True
    window_s: int = Field(default=HOUR, ge=60, le=7 * 24 * HOUR)
    grace_s: int = Field(default=120, ge=0, le=24 * HOUR)
    threshold: float = Field(default=0.2, ge=0.0, le=1.0)
    min_volume: int = Field(default=20, ge=1)
    country_min_volume: int = Field(default=100, ge=1)
    block_durations_s: tuple[int, ...] = DEFAULT_BLOCK_DURATIONS_S
    escalation_lookback_s: int = Field(default=30 * 24 * HOUR, ge=0)
    cache_s: float = Field(default=5.0, ge=0.0)

    @classmethod
    def of(cls, risk: Any, *, base: ConversionSettings | None = None) -> ConversionSettings:
        """`base` (default: the defaults) with what an application's `RiskSettings` sets
        (its `conversion_*`, `block_durations_s` and `block_escalation_lookback_s` fields,
        where it has them)."""
        base = base or cls()
        if risk is None:
            return base
        if isinstance(risk, ConversionSettings):
            return risk
        names = {
            "enabled": "conversion_enabled",
            "window_s": "conversion_window_s",
            "grace_s": "conversion_grace_s",
            "threshold": "conversion_threshold",
            "min_volume": "conversion_min_volume",
            "country_min_volume": "conversion_country_min_volume",
            "block_durations_s": "block_durations_s",
            "escalation_lookback_s": "block_escalation_lookback_s",
            "cache_s": "conversion_cache_s",
        }
        found = {
            ours: getattr(risk, theirs)
            for ours, theirs in names.items()
            if getattr(risk, theirs, None) is not None
        }
        if not found:
            return base
        return cls.model_validate({**base.model_dump(), **found})

    def min_volume_of(self, scope: BlockScope) -> int:
        return self.min_volume if scope is BlockScope.PREFIX else self.country_min_volume


@dataclass(frozen=True)
class Stats:
    """Judged verifications of one scope: how many started, how many were approved."""

    started: int
    approved: int

    @property
    def conversion(self) -> float | None:
        return self.approved / self.started if self.started else None


def must_block(stats: Stats, *, threshold: float, min_volume: int) -> bool:
    """Enough judged verifications, and too few of them approved."""
    return stats.started >= min_volume and stats.approved < threshold * stats.started


def block_duration_s(durations: Sequence[int], level: int) -> int | None:
    """The duration of the `level`-th automatic block (the last one repeats); None:
    until lifted (no durations configured)."""
    if not durations:
        return None
    return durations[min(max(level, 1), len(durations)) - 1]


def _ago(seconds: int) -> str:
    if seconds % 86400 == 0:
        return f"{seconds // 86400} d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def block_reason(scope: BlockScope, stats: Stats, settings: ConversionSettings) -> str:
    """Why an automatic block was made, for the block and the verifications it refuses."""
    rate = round(100 * (stats.conversion or 0.0))
    return (
        f"conversion monitoring: {stats.approved} of {stats.started} verifications to this "
        f"{scope.value} approved ({rate} %) in {_ago(settings.window_s)}, "
        f"below {round(100 * settings.threshold)} %"
    )


async def scope_stats(
    store: Store,
    *,
    application_id: str,
    mode: str,
    scope: BlockScope,
    value: str,
    since: datetime,
    judged_before: datetime,
    now: datetime,
    exclude_id: str | None = None,
) -> Stats:
    """One aggregate query: verifications of the scope created in [since, now), judged
    (finished, or created before `judged_before`), not blocked, `exclude_id` left out.
    For the prefix scope `value` is the range hash."""
    column = (
        VerificationRecord.prefix_hash if scope is BlockScope.PREFIX else VerificationRecord.country
    )
    approved = func.coalesce(
        func.sum(case((col(VerificationRecord.status) == "approved", 1), else_=0)), 0
    )
    query = select(func.count(), approved).where(
        VerificationRecord.application_id == application_id,
        VerificationRecord.mode == str(mode),
        col(column) == value,
        col(VerificationRecord.created_at) >= since,
        col(VerificationRecord.created_at) < now,
        col(VerificationRecord.status) != "blocked",
        (col(VerificationRecord.finished_at).is_not(None))
        | (col(VerificationRecord.created_at) <= judged_before),
    )
    if exclude_id is not None:
        query = query.where(col(VerificationRecord.id) != exclude_id)
    async with store.session() as session:
        started, approved_count = (await session.exec(query)).one()
    return Stats(started=int(started or 0), approved=int(approved_count or 0))


@dataclass
class _Fetched:
    """A scope's counts as read from the store, kept for `ttl_s` (the settings' `cache_s`)."""

    stats: Stats
    ttl_s: float
    # Verifications let through by this process since the fetch, counted as unapproved.
    since_fetch: set[str] = field(default_factory=set)

    def estimate(self) -> Stats:
        return Stats(self.stats.started + len(self.since_fetch), self.stats.approved)


def _expiry(_key: object, fetched: _Fetched, now: float) -> float:
    return now + fetched.ttl_s


_CACHE_MAX = 10_000


class ConversionMonitor:
    """Refuses sends to blocked scopes and blocks scopes whose conversion collapsed.

    One per worker process (it caches per scope). `secret` keys the range hashes (the
    server's code secret, as for destination hashes). `clock` and `monotonic` are for tests.
    """

    def __init__(
        self,
        store: Store,
        *,
        secret: bytes,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._secret = secret
        self._clock = clock
        self._cache: TLRUCache[tuple[str, str, str, str], _Fetched] = TLRUCache(
            maxsize=_CACHE_MAX, ttu=_expiry, timer=monotonic
        )
        self._locks: dict[tuple[str, str, str, str], asyncio.Lock] = {}

    async def refusal(
        self,
        *,
        application_id: str,
        mode: str,
        verification_id: str,
        country: str | None,
        prefix: str | None,
        settings: ConversionSettings | None = None,
    ) -> RiskBlock | None:
        """The block that refuses this send (one in force, or one made now), else None.
        `prefix` is the number's range (`number_prefix`), never stored."""
        settings = settings or ConversionSettings()
        now = self._clock()
        prefix_hash = range_hash(self._secret, prefix) if prefix else None
        active = await blocks.find_active_block(
            self._store,
            application_id=application_id,
            mode=str(mode),
            country=country,
            prefix=prefix,
            prefix_hash=prefix_hash,
            now=now,
        )
        if active is not None or not settings.enabled:
            return active
        shown = (short_range(prefix + "0000") if prefix else None) or ""
        scopes = [(BlockScope.PREFIX, prefix_hash, shown), (BlockScope.COUNTRY, country, country)]
        for scope, value, label in scopes:
            if not value:
                continue
            made = await self._evaluate(
                application_id, str(mode), scope, value, label or "", verification_id, settings, now
            )
            if made is not None:
                return made
        return None

    async def _evaluate(
        self,
        application_id: str,
        mode: str,
        scope: BlockScope,
        value: str,
        label: str,
        verification_id: str,
        settings: ConversionSettings,
        now: datetime,
    ) -> RiskBlock | None:
        """Judge one scope; `value` is a country or a range hash, `label` what a block
        shows of it."""
        key = (application_id, mode, scope.value, value)
        min_volume = settings.min_volume_of(scope)
        cached = self._cache.get(key)
        if cached is not None and not must_block(
            cached.estimate(), threshold=settings.threshold, min_volume=min_volume
        ):
            cached.since_fetch.add(verification_id)
            return None
        if len(self._locks) >= _CACHE_MAX:
            self._locks = {k: v for k, v in self._locks.items() if v.locked()}
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            stats = await self._stats(
                application_id, mode, scope, value, verification_id, settings, now
            )
            if not must_block(stats, threshold=settings.threshold, min_volume=min_volume):
                self._cache[key] = _Fetched(stats, settings.cache_s, {verification_id})
                return None
            self._cache.pop(key, None)
            # Another send of this process may have made the block while we waited.
            existing = await blocks.find_active_block(
                self._store,
                application_id=application_id,
                mode=mode,
                country=value if scope is BlockScope.COUNTRY else None,
                prefix=None,
                prefix_hash=value if scope is BlockScope.PREFIX else None,
                now=self._clock(),
            )
            if existing is not None:
                return existing
            return await self._block(
                application_id, mode, scope, value, label, stats, settings, now
            )

    async def _stats(
        self,
        application_id: str,
        mode: str,
        scope: BlockScope,
        value: str,
        verification_id: str,
        settings: ConversionSettings,
        now: datetime,
    ) -> Stats:
        since = now - timedelta(seconds=settings.window_s)
        ended = await blocks.last_block_end(
            self._store, application_id=application_id, mode=mode, scope=scope, value=value, now=now
        )
        if ended is not None and ended > since:
            since = ended
        return await scope_stats(
            self._store,
            application_id=application_id,
            mode=mode,
            scope=scope,
            value=value,
            since=since,
            judged_before=now - timedelta(seconds=settings.grace_s),
            now=now,
            exclude_id=verification_id,
        )

    async def _block(
        self,
        application_id: str,
        mode: str,
        scope: BlockScope,
        value: str,
        label: str,
        stats: Stats,
        settings: ConversionSettings,
        now: datetime,
    ) -> RiskBlock:
        lookback = (
            now - timedelta(seconds=settings.escalation_lookback_s)
            if settings.escalation_lookback_s
            else None
        )
        previous = await blocks.count_automatic_blocks(
            self._store,
            application_id=application_id,
            mode=mode,
            scope=scope,
            value=value,
            since=lookback,
        )
        level = previous + 1
        block = await blocks.create_block(
            self._store,
            application_id=application_id,
            mode=mode,
            scope=scope,
            value=label,
            value_hash=value if scope is BlockScope.PREFIX else None,
            reason=block_reason(scope, stats, settings),
            automatic=True,
            level=level,
            duration_s=block_duration_s(settings.block_durations_s, level),
            now=now,
        )
        logger.warning(
            "risk block created automatically",
            extra={
                "event": "risk_block.created",
                "block_id": block.id,
                "application_id": application_id,
                "mode": mode,
                "scope": scope.value,
                "value": label,
                "level": level,
                "started": stats.started,
                "approved": stats.approved,
                "expires_at": block.expires_at.isoformat() if block.expires_at else None,
            },
        )
        return block

    def forget(self) -> None:
        """Drop every cached answer (tests; after an operator changed blocks)."""
        self._cache.clear()


# --------------------------------------------------------------------- the send gate
def _limit_reason(decision: Decision) -> str:
    what = {
        LimitName.DESTINATION.value: "to this destination",
        LimitName.PREFIX.value: "to this number range",
        LimitName.COUNTRY.value: "to this country",
    }.get(decision.limit.name, "")
    return (
        f"velocity limit: {decision.limit.limit} sends per {_ago(decision.limit.window_s)} "
        f"{what}".rstrip()
    )


def block_refusal_reason(block: RiskBlock) -> str:
    """What a verification refused by `block` records as its reason (no destination)."""
    return f"risk block {block.id} on {block.scope} {block.value}: {block.reason}"[:300]


@dataclass(frozen=True)
class GateRefusal:
    """Why the gate refused a send: the reason recorded with the verification (never the
    destination) and a short code (`low_conversion`, `prefix_blocked`, `country_blocked`,
    `destination_limit`, `prefix_limit`, `country_limit`, or `spend_daily_limit` and the
    like for a spend cap, see activities.pricing). A full limit
    also names the `limit` and when it has room again (`retry_after_s`); a block has
    neither: it does not pass with time alone."""

    reason: str
    code: str
    limit: str | None = None
    retry_after_s: int | None = None

    @property
    def is_limit(self) -> bool:
        """A full limit (retryable later), not a block."""
        return self.retry_after_s is not None

    @classmethod
    def of_block(cls, block: RiskBlock) -> GateRefusal:
        code = "low_conversion" if block.automatic else f"{block.scope}_blocked"
        return cls(block_refusal_reason(block), code)

    @classmethod
    def of_limit(cls, decision: Decision) -> GateRefusal:
        return cls(
            _limit_reason(decision),
            f"{decision.limit.name}_limit",
            limit=decision.limit.name,
            retry_after_s=max(1, decision.reset_s),
        )


class DeliveryGate:
    """The risk checks of one delivery, before any provider call (the delivery activity).

    In order: (a) a block in force for the destination's country or number prefix,
    (b) conversion monitoring of that prefix and country (which may make the block now),
    (c) for sends the API did not count at create (resends, fallback and failover sends:
    every delivery but a run's very first), the application's per-destination, per-prefix
    and per-country send limits, charged with the delivery key as member so that a
    retried activity never counts twice (the spend caps are charged after, with the
    send's price: activities.pricing). (a) and (b) apply to phone channels only.
    A destination on the application's safe list (read at most every `settings_ttl_s`)
    skips (b), the automatic blocks of (a) and the send limits of (c); manual blocks
    still apply. Returns why to refuse, or None.
    """

    def __init__(
        self,
        store: Store,
        limiter: Limiter | None,
        *,
        secret: bytes,
        conversion: ConversionSettings | None = None,
        monitor: ConversionMonitor | None = None,
        settings_ttl_s: float = 10.0,
    ) -> None:
        self._store = store
        self._limiter = limiter
        self._secret = secret
        self._conversion = conversion or ConversionSettings()
        self.monitor = monitor or ConversionMonitor(store, secret=secret)
        self._risk: TTLCache[str, RiskSettings] = TTLCache(maxsize=_CACHE_MAX, ttl=settings_ttl_s)
        self._safe: TTLCache[tuple[str, str], frozenset[str]] = TTLCache(
            maxsize=_CACHE_MAX, ttl=settings_ttl_s
        )

    async def risk_settings(self, application_id: str) -> RiskSettings:
        """The application's risk settings, re-read at most every `settings_ttl_s`."""
        cached = self._risk.get(application_id)
        if cached is not None:
            return cached
        from otp.store.applications import get_application

        application = await get_application(self._store, application_id=application_id)
        risk = application.risk if application is not None else RiskSettings()
        self._risk[application_id] = risk
        return risk

    async def safe_listed(self, input: DeliverInput) -> bool:
        """Whether the send's destination is on its application's safe list (cached)."""
        scope = (input.application_id, input.mode.value)
        found = self._safe.get(scope)
        if found is None:
            from otp.store.safe_list import safe_hashes

            found = await safe_hashes(self._store, application_id=scope[0], mode=scope[1])
            self._safe[scope] = found
        return bool(found) and destination_hash(self._secret, input.to) in found

    async def refusal(self, input: DeliverInput, *, member: str) -> GateRefusal | None:
        risk = await self.risk_settings(input.application_id)
        safe = await self.safe_listed(input)
        if input.channel.is_phone and safe:
            manual = await blocks.find_active_block(
                self._store,
                application_id=input.application_id,
                mode=input.mode.value,
                country=country_of(input.to) or input.country,
                prefix=number_prefix(input.to),
            )
            if manual is not None and not manual.automatic:
                return GateRefusal.of_block(manual)
        elif input.channel.is_phone:
            prefix = number_prefix(input.to)
            block = await self.monitor.refusal(
                application_id=input.application_id,
                mode=input.mode.value,
                verification_id=input.verification_id,
                country=country_of(input.to) or input.country,
                prefix=prefix,
                settings=ConversionSettings.of(risk, base=self._conversion),
            )
            if block is not None:
                return GateRefusal.of_block(block)
        if input.precounted or self._limiter is None:
            return None
        step = ChannelStep(channel=input.channel, to=input.to)
        hits = (
            []
            if safe
            else send_hits(
                risk,
                secret=self._secret,
                application_id=input.application_id,
                mode=input.mode,
                step=step,
            )
        )
        if not hits:
            return None
        decisions = await self._limiter.hit_all(hits, member=member)
        refused = [d for d in decisions if not d.allowed]
        if refused:
            return GateRefusal.of_limit(refused[0])
        return None
