"""Idempotency-Key records: claim a key, store the first response, replay it (keyword-only queries).

A key is claimed by inserting its row `in_flight`; the insert is atomic on SQLite and
PostgreSQL (`ON CONFLICT DO NOTHING`), so of many concurrent requests (in any number of
processes) exactly one claims it. The holder then stores the response (`complete`) or,
when its outcome must not be kept (a 5xx, an exception), deletes the claim (`release`)
so a retry can run. A claim whose `locked_until` has passed belongs to a holder that
died: the next request takes it over with a conditional UPDATE, again atomic.

`locked_until` doubles as the claim's fencing token: `complete` and `release` only touch
the row while it still carries the holder's value, so a holder that outlived its lock
cannot overwrite the request that took over. A row whose `expires_at` has passed is as
good as absent (`purge_expired` deletes them). Stored responses are sealed: they may hold
a destination.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from otp.security.sealing import seal, unseal
from otp.settings import Secrets
from otp.store import Store
from otp.store.tables import IdempotencyRecord, utcnow

SEAL_PURPOSE = "idempotent-response"
IN_FLIGHT = "in_flight"
COMPLETED = "completed"

_TABLE: Any = IdempotencyRecord.__table__  # type: ignore[attr-defined]
_C = _TABLE.c
# Rounds of "insert lost, but the row vanished before it could be read" before giving up.
_ROUNDS = 5


class Outcome(enum.StrEnum):
    CLAIMED = "claimed"  # the caller owns the key: do the work, then complete or release
    REPLAY = "replay"  # the key's response is stored: answer it again
    MISMATCH = "mismatch"  # the key was used with a different request
    IN_FLIGHT = "in_flight"  # another request holds the key right now


@dataclass(frozen=True)
class KeyRef:
    """Which key: per application, mode and scope (method + route + resource)."""

    application_id: str
    mode: str
    scope: str
    key: str


@dataclass(frozen=True)
class Claim:
    """A held key; `locked_until` identifies this holder's claim."""

    ref: KeyRef
    locked_until: datetime


@dataclass(frozen=True)
class Begun:
    outcome: Outcome
    claim: Claim | None = None  # CLAIMED
    status_code: int | None = None  # REPLAY
    response: str | None = None  # REPLAY: the stored response text, unsealed


def _where(ref: KeyRef) -> Any:
    return and_(
        _C.application_id == ref.application_id,
        _C.mode == ref.mode,
        _C.scope == ref.scope,
        _C.key == ref.key,
    )


def _insert(store: Store) -> Any:
    dialect = postgresql if store.engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(_TABLE)


async def begin(
    store: Store,
    *,
    secrets: Secrets,
    ref: KeyRef,
    fingerprint: str,
    lock: timedelta,
    ttl: timedelta,
    now: datetime | None = None,
) -> Begun:
    """Claim `ref` for a request whose body has `fingerprint`, or say why not.

    Claimed rows stay in flight for `lock` (a crashed holder's claim can be taken over
    after that) and are kept for `ttl` from the claim.
    """
    now = now or utcnow()
    locked_until = now + lock
    fresh = {
        "fingerprint": fingerprint,
        "state": IN_FLIGHT,
        "status_code": None,
        "response": None,
        "created_at": now,
        "locked_until": locked_until,
        "expires_at": now + ttl,
    }
    claimed = Begun(Outcome.CLAIMED, claim=Claim(ref, locked_until))
    for _ in range(_ROUNDS):
        async with store.engine.begin() as conn:
            inserted = await conn.execute(
                _insert(store)
                .values(
                    application_id=ref.application_id,
                    mode=ref.mode,
                    scope=ref.scope,
                    key=ref.key,
                    **fresh,
                )
                .on_conflict_do_nothing(index_elements=["application_id", "mode", "scope", "key"])
            )
        if inserted.rowcount == 1:
            return claimed
        async with store.engine.connect() as conn:
            row = (await conn.execute(select(_TABLE).where(_where(ref)))).mappings().first()
        if row is None:
            continue  # released or purged in between: try to insert again
        if row["expires_at"] <= now:
            # Expired but not purged yet: the key is free again. The first taker wins.
            if await _take_over(store, ref, _C.expires_at <= now, fresh):
                return claimed
            continue
        if row["fingerprint"] != fingerprint:
            return Begun(Outcome.MISMATCH)
        if row["state"] == COMPLETED:
            response = row["response"]
            return Begun(
                Outcome.REPLAY,
                status_code=row["status_code"],
                response=unseal(secrets, response, purpose=SEAL_PURPOSE) if response else None,
            )
        if row["locked_until"] > now:
            return Begun(Outcome.IN_FLIGHT)
        # The holder died (its lock passed): take the claim over, keeping the original
        # creation and expiry.
        stale = and_(_C.state == IN_FLIGHT, _C.locked_until < now)
        if await _take_over(store, ref, stale, {"locked_until": locked_until}):
            return claimed
    return Begun(Outcome.IN_FLIGHT)


async def _take_over(store: Store, ref: KeyRef, condition: Any, values: dict[str, Any]) -> bool:
    async with store.engine.begin() as conn:
        result = await conn.execute(update(_TABLE).where(_where(ref), condition).values(**values))
    return bool(result.rowcount == 1)


async def complete(
    store: Store, *, secrets: Secrets, claim: Claim, status_code: int, response: str
) -> bool:
    """Store the response of a claimed key (sealed). False if the claim was lost meanwhile."""
    sealed = seal(secrets, response, purpose=SEAL_PURPOSE)
    held = and_(_C.state == IN_FLIGHT, _C.locked_until == claim.locked_until)
    return await _take_over(
        store,
        claim.ref,
        held,
        {"state": COMPLETED, "status_code": status_code, "response": sealed},
    )


async def release(store: Store, *, claim: Claim) -> bool:
    """Delete a claim that must not be kept, so that a retry can run. False if already gone."""
    async with store.engine.begin() as conn:
        result = await conn.execute(
            delete(_TABLE).where(
                _where(claim.ref),
                _C.state == IN_FLIGHT,
                _C.locked_until == claim.locked_until,
            )
        )
    return bool(result.rowcount == 1)


async def purge_expired(store: Store, *, now: datetime | None = None) -> int:
    """Delete every expired key (in flight or completed). The number deleted."""
    async with store.engine.begin() as conn:
        result = await conn.execute(delete(_TABLE).where(_C.expires_at <= (now or utcnow())))
    return int(result.rowcount or 0)
