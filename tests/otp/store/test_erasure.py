"""Table-driven erasure of one destination's rows, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import SQLModel, select

from api.services.erasure import subject_of
from otp.domain import Mode
from otp.store import Store
from otp.store import erasure as rows
from otp.store.events import destination_hash
from otp.store.tables import (
    Counter,
    Lockout,
    RateHit,
    SafeListEntry,
    SandboxMessage,
    VerificationDestination,
    VerificationEvent,
    VerificationRecord,
    WebhookAttempt,
    WebhookMessage,
    utcnow,
)

SECRET = b"e" * 32
APP = "app_erasure"
ERASED, KEPT = "+14155550171", "+14155550172"


async def _seed(store: Store, vid: str, to: str, mode: str = "test", app: str = APP) -> None:
    now = utcnow()
    digest = destination_hash(SECRET, to)
    async with store.session() as session:
        session.add(
            VerificationRecord(
                id=vid,
                application_id=app,
                mode=mode,
                status="approved",
                first_channel="sms",
                channel="sms",
                country="US",
                prefix_hash="f" * 64,
                to_masked="+1********" + to[-2:],
                client_ref="ref-" + vid,
                created_at=now,
                expires_at=now + timedelta(minutes=10),
                final=True,
                snapshot={"channels": [{"channel": "sms", "to": "+1********" + to[-2:]}]},
            )
        )
        session.add(
            VerificationDestination(verification_id=vid, destination_hash=digest, channel="sms")
        )
        session.add(
            VerificationEvent(
                verification_id=vid,
                key="created",
                application_id=app,
                mode=mode,
                type="created",
                occurred_at=now,
                destination_hash=digest,
            )
        )
        session.add(
            SandboxMessage(
                message_id="msg_" + vid,
                verification_id=vid,
                application_id=app,
                channel="sms",
                to=to,
                body="code",
                idempotency_key="idem_" + vid,
            )
        )
        session.add(
            WebhookMessage(
                message_id="evt_" + vid,
                endpoint_id="ep_1",
                application_id=app,
                mode=mode,
                event_type="verification.approved",
                verification_id=vid,
            )
        )
        session.add(WebhookAttempt(message_id="evt_" + vid, endpoint_id="ep_1", attempt=1))
        session.add(RateHit(key=f"{app}:{mode}:dst:{digest}", at=1.0))
        session.add(Counter(key=f"{app}:{mode}:fchk{vid[-1]}:{digest}", value=2))
        masked = "+1********" + to[-2:]
        session.add(
            Lockout(
                id="lck_" + vid,
                application_id=app,
                mode=mode,
                destination_hash=digest,
                to_masked=masked,
                until=now + timedelta(hours=24),
            )
        )
        session.add(
            SafeListEntry(
                id="sfl_" + vid,
                application_id=app,
                mode=mode,
                destination_hash=digest,
                to_masked=masked,
            )
        )
        await session.commit()


async def _dump(store: Store) -> dict[str, list[dict[str, object]]]:
    async with store.engine.connect() as conn:
        return {
            t.name: [dict(r) for r in (await conn.execute(t.select())).mappings()]
            for t in SQLModel.metadata.sorted_tables
        }


async def test_erase_removes_every_target_row_and_anonymises_records(any_store: Store) -> None:
    await _seed(any_store, "ver_erase1", ERASED)
    await _seed(any_store, "ver_erase2", ERASED)
    await _seed(any_store, "ver_erase3", ERASED, mode="live")
    await _seed(any_store, "ver_keep1", KEPT)

    subject = await rows.find(
        any_store, subject_of(secret=SECRET, application_id=APP, to=ERASED, mode=None)
    )
    assert subject.verification_ids == ("ver_erase1", "ver_erase2", "ver_erase3")
    exported = await rows.export(any_store, subject)
    assert exported.counts == {target.name: 3 for target in rows.TARGETS}

    test_only = await rows.find(
        any_store, subject_of(secret=SECRET, application_id=APP, to=ERASED, mode=Mode.TEST)
    )
    assert test_only.verification_ids == ("ver_erase1", "ver_erase2")
    before = await _dump(any_store)
    counts = await rows.erase(any_store, test_only)
    assert counts == {target.name: 2 for target in rows.TARGETS}

    after = await _dump(any_store)
    digest = destination_hash(SECRET, ERASED)
    text = repr({k: v for k, v in after.items() if k != "verifications"})
    assert "ver_erase1" not in text and "ver_erase2" not in text
    # The live one and the other number are untouched.
    assert "ver_erase3" in text and "ver_keep1" in text and text.count(digest) == 6
    records = {r["id"]: r for r in after["verifications"]}
    assert len(records) == 4  # analytics keep counting them
    for vid in ("ver_erase1", "ver_erase2"):
        record = records[vid]
        assert record["to_masked"] == "" and record["client_ref"] is None
        assert record["prefix_hash"] is None and record["snapshot"] in ({}, "{}")
        assert (record["status"], record["country"], record["final"]) == ("approved", "US", True)
    assert records["ver_keep1"] == {r["id"]: r for r in before["verifications"]}["ver_keep1"]
    again = await rows.find(any_store, test_only)
    assert again.verification_ids == ()
    async with any_store.session() as session:
        left = (await session.exec(select(SandboxMessage.to))).all()
    assert sorted(left) == [ERASED, KEPT]  # the live verification's, and the other number's
