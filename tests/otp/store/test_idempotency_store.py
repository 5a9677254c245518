"""Idempotency-Key records on SQLite and PostgreSQL: claim, replay, take-over, release, purge."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

from sqlmodel import select

from otp.security.sealing import unseal
from otp.settings import Secrets
from otp.store import IdempotencyRecord, Store, utcnow
from otp.store import idempotency as idem
from otp.store.idempotency import Begun, KeyRef, Outcome

LOCK = timedelta(seconds=30)
TTL = timedelta(hours=24)


def _ref(key: str | None = None, scope: str = "POST /v1/verifications") -> KeyRef:
    return KeyRef("default", "test", scope, key or f"key-{uuid.uuid4().hex}")


async def _begin(
    store: Store,
    secrets: Secrets,
    ref: KeyRef,
    fingerprint: str = "f1",
    *,
    now: datetime | None = None,
) -> Begun:
    return await idem.begin(
        store, secrets=secrets, ref=ref, fingerprint=fingerprint, lock=LOCK, ttl=TTL, now=now
    )


async def _row(store: Store, ref: KeyRef) -> IdempotencyRecord | None:
    async with store.session() as session:
        return (
            await session.exec(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.application_id == ref.application_id,
                    IdempotencyRecord.mode == ref.mode,
                    IdempotencyRecord.scope == ref.scope,
                    IdempotencyRecord.key == ref.key,
                )
            )
        ).first()


async def test_claim_complete_replay(any_store: Store, secrets: Secrets) -> None:
    ref = _ref()
    first = await _begin(any_store, secrets, ref)
    assert first.outcome is Outcome.CLAIMED and first.claim is not None
    assert (await _begin(any_store, secrets, ref)).outcome is Outcome.IN_FLIGHT

    body = '{"id":"ver_x","to":"+1415*****23"}'
    assert await idem.complete(
        any_store, secrets=secrets, claim=first.claim, status_code=201, response=body
    )
    again = await _begin(any_store, secrets, ref)
    assert again.outcome is Outcome.REPLAY
    assert (again.status_code, again.response) == (201, body)

    # Stored sealed: the row holds no plaintext, and opens only for its purpose.
    row = await _row(any_store, ref)
    assert row is not None and row.state == "completed" and row.response
    assert "1415" not in row.response
    assert unseal(secrets, row.response, purpose=idem.SEAL_PURPOSE) == body


async def test_different_fingerprint_is_a_mismatch_in_flight_or_completed(
    any_store: Store, secrets: Secrets
) -> None:
    ref = _ref()
    claimed = await _begin(any_store, secrets, ref, "f1")
    assert claimed.claim is not None
    assert (await _begin(any_store, secrets, ref, "f2")).outcome is Outcome.MISMATCH
    await idem.complete(
        any_store, secrets=secrets, claim=claimed.claim, status_code=422, response="{}"
    )
    assert (await _begin(any_store, secrets, ref, "f2")).outcome is Outcome.MISMATCH
    replay = await _begin(any_store, secrets, ref, "f1")
    assert (replay.outcome, replay.status_code) == (Outcome.REPLAY, 422)


async def test_keys_are_independent_per_scope_mode_and_application(
    any_store: Store, secrets: Secrets
) -> None:
    ref = _ref("same-key", "POST /v1/verifications/{verification_id}/check ver_a")
    others = [
        KeyRef(
            ref.application_id,
            ref.mode,
            "POST /v1/verifications/{verification_id}/check ver_b",
            ref.key,
        ),
        KeyRef(ref.application_id, "live", ref.scope, ref.key),
        KeyRef("other-app", ref.mode, ref.scope, ref.key),
    ]
    for r in (ref, *others):
        assert (await _begin(any_store, secrets, r)).outcome is Outcome.CLAIMED


async def test_release_lets_a_retry_claim(any_store: Store, secrets: Secrets) -> None:
    ref = _ref()
    first = await _begin(any_store, secrets, ref)
    assert first.claim is not None
    assert await idem.release(any_store, claim=first.claim)
    assert await _row(any_store, ref) is None
    assert not await idem.release(any_store, claim=first.claim)  # already gone
    # A retry may even carry another body: nothing was kept of the first.
    assert (await _begin(any_store, secrets, ref, "f2")).outcome is Outcome.CLAIMED


async def test_a_crashed_holders_claim_is_taken_over_once(
    any_store: Store, secrets: Secrets
) -> None:
    ref = _ref()
    start = utcnow()
    crashed = await _begin(any_store, secrets, ref, now=start)
    assert crashed.claim is not None
    # Still locked: in flight.
    assert (
        await _begin(any_store, secrets, ref, now=start + LOCK / 2)
    ).outcome is Outcome.IN_FLIGHT
    # The lock passed: exactly one of several takers gets it.
    later = start + LOCK + timedelta(seconds=1)
    results = await asyncio.gather(*(_begin(any_store, secrets, ref, now=later) for _ in range(6)))
    outcomes = sorted(r.outcome.value for r in results)
    assert outcomes == ["claimed"] + ["in_flight"] * 5
    taker = next(r.claim for r in results if r.claim is not None)

    # The crashed holder, come back, can neither complete nor release the new claim.
    assert not await idem.complete(
        any_store, secrets=secrets, claim=crashed.claim, status_code=201, response="{}"
    )
    assert not await idem.release(any_store, claim=crashed.claim)
    assert await idem.complete(
        any_store, secrets=secrets, claim=taker, status_code=200, response="{}"
    )
    row = await _row(any_store, ref)
    assert row is not None and row.status_code == 200
    # Taking over keeps the key's original lifetime.
    assert row.expires_at == start + TTL


async def test_concurrent_begins_claim_exactly_once(any_store: Store, secrets: Secrets) -> None:
    ref = _ref()
    results = await asyncio.gather(*(_begin(any_store, secrets, ref) for _ in range(12)))
    outcomes = [r.outcome for r in results]
    assert outcomes.count(Outcome.CLAIMED) == 1
    assert outcomes.count(Outcome.IN_FLIGHT) == 11


async def test_concurrent_begins_across_engines_claim_exactly_once(
    any_store: Store, secrets: Secrets
) -> None:
    """Separate engines (connection pools), as separate API processes would have."""
    stores = [Store(any_store.url) for _ in range(4)]
    try:
        ref = _ref()
        results = await asyncio.gather(*(_begin(stores[i % 4], secrets, ref) for i in range(16)))
        assert [r.outcome for r in results].count(Outcome.CLAIMED) == 1
    finally:
        for s in stores:
            await s.close()


async def test_expired_keys_are_free_and_purged(any_store: Store, secrets: Secrets) -> None:
    start = utcnow()
    done, pending, fresh = _ref(), _ref(), _ref()
    claim = (await _begin(any_store, secrets, done, now=start)).claim
    assert claim is not None
    await idem.complete(any_store, secrets=secrets, claim=claim, status_code=201, response="{}")
    await _begin(any_store, secrets, pending, now=start)
    await _begin(any_store, secrets, fresh, now=start + TTL)

    after = start + TTL + timedelta(seconds=1)
    # Expired but not purged: the key can be used again, even with another body.
    reused = await _begin(any_store, secrets, done, "f2", now=after)
    assert reused.outcome is Outcome.CLAIMED
    row = await _row(any_store, done)
    assert row is not None and row.state == "in_flight" and row.response is None

    assert await idem.purge_expired(any_store, now=after) == 1  # `pending` only
    assert await _row(any_store, pending) is None
    assert await _row(any_store, fresh) is not None
    assert await _row(any_store, done) is not None
    assert await idem.purge_expired(any_store, now=after) == 0
    assert await idem.purge_expired(any_store, now=after + 2 * TTL) == 2
