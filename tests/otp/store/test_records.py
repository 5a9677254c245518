"""The event log, verification records, search and analytics, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from otp.domain import (
    Channel,
    ChannelStep,
    DeliveryAttempt,
    DeliveryReceiptInput,
    DeliveryStatus,
    EventType,
    LogEntry,
    Mode,
    Status,
    VerificationState,
    WebhookEvent,
)
from otp.store import Store, VerificationRecord, WebhookEndpoint
from otp.store import records as store_records
from otp.store.events import EventRecorder, destination_hash
from otp.store.records import SearchFilter
from tests.conftest import TEST_SECRETS

APP = "app_records"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def state(
    *,
    status: Status = Status.APPROVED,
    created: datetime = T0,
    verify_s: float = 20,
    to: str = "+14155550100",
    channel: Channel = Channel.SMS,
    delivered: bool = True,
    attempts_used: int = 1,
    client_ref: str | None = None,
    mode: Mode = Mode.TEST,
) -> VerificationState:
    finished = created + timedelta(seconds=verify_s) if status is not Status.PENDING else None
    return VerificationState(
        application_id=APP,
        mode=mode,
        status=status,
        reason="because",
        created_at=created,
        expires_at=created + timedelta(minutes=10),
        finished_at=finished,
        channels=[ChannelStep(channel=channel, to=to)],
        deliveries=[
            DeliveryAttempt(
                step_index=0,
                channel=channel,
                provider="sandbox",
                provider_message_id="m1",
                reference="ref-1",
                status=DeliveryStatus.DELIVERED if delivered else DeliveryStatus.SENT,
                started_at=created,
                updated_at=created + timedelta(seconds=3),
            )
        ],
        max_attempts=5,
        attempts_used=attempts_used,
        sends=1,
        max_sends=5,
        client_ref=client_ref,
    )


def entries(created: datetime = T0, *extra: LogEntry) -> list[LogEntry]:
    return [
        LogEntry(key="created", type=EventType.CREATED, occurred_at=created, step_index=0),
        LogEntry(
            key="send:ref-1",
            type=EventType.SEND_ATTEMPTED,
            occurred_at=created,
            channel=Channel.SMS,
            step_index=0,
        ),
        *extra,
    ]


async def _add_endpoint(store: Store, mode: str = "test") -> None:
    """An enabled endpoint, so that subscribed events are due for dispatch."""
    async with store.session() as session:
        session.add(
            WebhookEndpoint(
                id=f"we_{mode}",
                application_id=APP,
                mode=mode,
                url="http://127.0.0.1:9/hook",
                secret_sealed="v1.x.y",
            )
        )
        await session.commit()


class Dispatched:
    def __init__(self) -> None:
        self.events: list[WebhookEvent] = []

    async def __call__(self, event: WebhookEvent) -> int:
        self.events.append(event)
        return 1


async def test_events_are_written_once_whoever_writes_them(any_store: Store) -> None:
    await _add_endpoint(any_store)
    dispatched = Dispatched()
    recorder = EventRecorder(any_store, TEST_SECRETS.code_secret, dispatch=dispatched)
    terminal = LogEntry(key="terminal", type=EventType.APPROVED, occurred_at=T0, step_index=0)
    first = await recorder.record_state(
        "ver_a1", state(), entries(T0, terminal), country="US", final=True
    )
    again = await recorder.record_state(
        "ver_a1", state(), entries(T0, terminal), country="US", final=True
    )
    assert first == (3, 2)  # created + approved are the subscribed ones
    assert again == (0, 0)
    assert sorted(e.type for e in dispatched.events) == [
        "verification.approved",
        "verification.created",
    ]
    assert len({e.id for e in dispatched.events}) == 2
    events = await store_records.list_events(
        any_store, verification_id="ver_a1", application_id=APP, mode="test"
    )
    assert [e.type for e in events] == ["created", "send_attempted", "approved"]
    send = events[1]
    assert send.to_masked == "+1********00"
    assert send.destination_hash == destination_hash(TEST_SECRETS.code_secret, "+14155550100")
    assert send.country == "US"
    for event in events:  # nothing of the destination in clear, anywhere
        assert "4155550100" not in repr(event.model_dump())


async def test_a_late_non_final_write_never_undoes_the_final_record(any_store: Store) -> None:
    recorder = EventRecorder(any_store, TEST_SECRETS.code_secret)
    await recorder.record_state("ver_b1", state(), entries(), country="US", final=True)
    await recorder.record_state(
        "ver_b1", state(status=Status.PENDING), entries(), country="US", final=False
    )
    row = await store_records.get_record(
        any_store, verification_id="ver_b1", application_id=APP, mode="test"
    )
    assert row is not None and row.status == "approved" and row.final
    assert row.time_to_verify_ms == 20_000
    assert row.time_to_deliver_ms == 3_000
    # Scoped: another application or mode does not see it.
    assert (
        await store_records.get_record(
            any_store, verification_id="ver_b1", application_id="other", mode="test"
        )
        is None
    )
    assert (
        await store_records.get_record(
            any_store, verification_id="ver_b1", application_id=APP, mode="live"
        )
        is None
    )


async def test_a_receipt_after_the_end_is_logged_and_marks_delivery(any_store: Store) -> None:
    await _add_endpoint(any_store)
    dispatched = Dispatched()
    recorder = EventRecorder(any_store, TEST_SECRETS.code_secret, dispatch=dispatched)
    await recorder.record_state(
        "ver_c1", state(delivered=False), entries(), country="US", final=True
    )
    receipt = DeliveryReceiptInput(
        provider="twilio", provider_message_id="SM1", status=DeliveryStatus.DELIVERED
    )
    assert not await recorder.record_receipt("ver_c1", receipt)  # no reference, unknown id
    receipt.reference = "ref-1"
    assert await recorder.record_receipt("ver_c1", receipt)
    assert await recorder.record_receipt("ver_c1", receipt)  # a repeated callback: no new row
    assert not await recorder.record_receipt("ver_unknown", receipt)
    events = await store_records.list_events(
        any_store, verification_id="ver_c1", application_id=APP, mode="test"
    )
    assert [e.type for e in events].count("delivered") == 1
    row = await store_records.get_record(
        any_store, verification_id="ver_c1", application_id=APP, mode="test"
    )
    assert row is not None and row.delivered
    assert [e.type for e in dispatched.events].count("verification.delivered") == 1


async def _seed(store: Store) -> None:
    """A known history: 2 days, 2 channels, 2 countries."""
    recorder = EventRecorder(store, TEST_SECRETS.code_secret)
    day2 = T0 + timedelta(days=1)
    rows = [
        ("ver_s1", state(created=T0, verify_s=10, client_ref="u1"), "US"),
        ("ver_s2", state(created=T0 + timedelta(minutes=1), verify_s=30), "US"),
        (
            "ver_s3",
            state(
                created=T0 + timedelta(minutes=2),
                status=Status.EXPIRED,
                delivered=False,
                attempts_used=2,
            ),
            "US",
        ),
        (
            "ver_s4",
            state(
                created=day2,
                channel=Channel.EMAIL,
                to="bob@example.com",
                verify_s=50,
                attempts_used=3,
            ),
            None,
        ),
        (
            "ver_s5",
            state(
                created=day2 + timedelta(minutes=1),
                to="+447700900123",
                status=Status.MAX_ATTEMPTS_REACHED,
                attempts_used=5,
            ),
            "GB",
        ),
        (
            "ver_s6",
            state(created=day2 + timedelta(minutes=2), mode=Mode.LIVE),
            "US",
        ),
    ]
    for ident, st, country in rows:
        await recorder.record_state(ident, st, entries(st.created_at), country=country, final=True)
    # ver_s2 fell back once.
    fallback = LogEntry(key="fallback:1", type=EventType.FALLBACK, occurred_at=T0, step_index=1)
    await recorder.record_state(
        "ver_s2",
        state(created=T0 + timedelta(minutes=1), verify_s=30),
        [*entries(T0), fallback],
        country="US",
        final=True,
    )


async def test_search_filters_and_paginates(any_store: Store) -> None:
    await _seed(any_store)
    base = SearchFilter(application_id=APP, mode="test")

    async def ids(where: SearchFilter, limit: int = 50) -> list[str]:
        rows, _ = await store_records.search(any_store, where=where, limit=limit)
        return [r.id for r in rows]

    assert await ids(base) == ["ver_s5", "ver_s4", "ver_s3", "ver_s2", "ver_s1"]
    assert await ids(SearchFilter(application_id=APP, mode="live")) == ["ver_s6"]
    assert await ids(SearchFilter(application_id=APP, mode="test", status="expired")) == ["ver_s3"]
    assert await ids(SearchFilter(application_id=APP, mode="test", channel="email")) == ["ver_s4"]
    assert await ids(SearchFilter(application_id=APP, mode="test", country="GB")) == ["ver_s5"]
    assert await ids(SearchFilter(application_id=APP, mode="test", client_ref="u1")) == ["ver_s1"]
    by_email = destination_hash(TEST_SECRETS.code_secret, "Bob@Example.com")
    assert await ids(SearchFilter(application_id=APP, mode="test", destination_hash=by_email)) == [
        "ver_s4"
    ]
    day1 = SearchFilter(
        application_id=APP, mode="test", created_from=T0, created_to=T0 + timedelta(days=1)
    )
    assert await ids(day1) == ["ver_s3", "ver_s2", "ver_s1"]

    seen: list[str] = []
    cursor = None
    while True:
        rows, cursor = await store_records.search(any_store, where=base, limit=2, cursor=cursor)
        seen += [r.id for r in rows]
        if cursor is None:
            break
    assert seen == ["ver_s5", "ver_s4", "ver_s3", "ver_s2", "ver_s1"]
    with pytest.raises(ValueError):
        store_records.decode_cursor("not-a-cursor")


async def test_analytics_on_a_known_history(any_store: Store) -> None:
    await _seed(any_store)
    total, by_day = await store_records.analytics(
        any_store,
        application_id=APP,
        mode="test",
        created_from=T0,
        created_to=T0 + timedelta(days=2),
        group_by=["day"],
    )
    summary = total.as_dict()
    assert summary["started"] == 5
    assert summary["approved"] == 3
    assert summary["expired"] == 1
    assert summary["failed"] == 1
    assert summary["delivered"] == 4
    assert summary["conversion_rate"] == 0.6
    assert summary["delivery_rate"] == 0.8
    assert summary["fallback_rate"] == 0.2
    # checks: 1 + 1 + 2 + 3 + 5 = 12; wrong: 0 + 0 + 2 + 2 + 5 = 9
    assert summary["wrong_code_rate"] == 0.75
    # time to verify of approved ones: 10 s, 30 s, 50 s
    assert summary["time_to_verify_p50_ms"] == 30_000
    assert summary["time_to_verify_p95_ms"] == 50_000
    assert [(b.key["day"], b.started, b.approved) for b in by_day] == [
        ("2026-03-02", 3, 2),
        ("2026-03-03", 2, 1),
    ]
    _, by_channel_country = await store_records.analytics(
        any_store,
        application_id=APP,
        mode="test",
        created_from=T0,
        created_to=T0 + timedelta(days=2),
        group_by=["channel", "country"],
    )
    assert [(b.key["channel"], b.key["country"], b.started) for b in by_channel_country] == [
        ("email", None, 1),
        ("sms", "GB", 1),
        ("sms", "US", 3),
    ]


async def test_purge_drops_only_old_finished_verifications(any_store: Store) -> None:
    recorder = EventRecorder(any_store, TEST_SECRETS.code_secret)
    now = datetime.now(UTC)
    old = now - timedelta(days=40)
    await recorder.record_state(
        "ver_old", state(created=old), entries(old), country="US", final=True
    )
    await recorder.record_state(
        "ver_pending",
        state(created=old, status=Status.PENDING),
        entries(old),
        country="US",
        final=False,
    )
    await recorder.record_state(
        "ver_new", state(created=now), entries(now), country="US", final=True
    )
    assert await store_records.purge_finished(any_store, older_than=timedelta(days=30)) == 1
    left, _ = await store_records.search(
        any_store, where=SearchFilter(application_id=APP, mode="test"), limit=10
    )
    assert sorted(r.id for r in left) == ["ver_new", "ver_pending"]
    assert (
        await store_records.list_events(
            any_store, verification_id="ver_old", application_id=APP, mode="test"
        )
        == []
    )


def test_record_rows_hold_no_destination_in_clear() -> None:
    fields = set(VerificationRecord.model_fields)
    assert "to" not in fields and "to_masked" in fields


async def test_the_worker_purge_follows_the_retention_setting(any_store: Store) -> None:
    from otp.settings import Settings
    from otp.store.retention import purge_all

    async def purged(settings: Settings) -> int:
        return (await purge_all(any_store, settings)).get("verifications", 0)

    recorder = EventRecorder(any_store, TEST_SECRETS.code_secret)
    old = datetime.now(UTC) - timedelta(days=10)
    await recorder.record_state(
        "ver_p1", state(created=old), entries(old), country="US", final=True
    )
    assert await purged(Settings(record_retention_days=0)) == 0
    assert await purged(Settings(record_retention_days=30)) == 0
    assert await purged(Settings(record_retention_days=7)) == 1


async def test_without_endpoints_nothing_is_due_for_dispatch(any_store: Store) -> None:
    dispatched = Dispatched()
    recorder = EventRecorder(any_store, TEST_SECRETS.code_secret, dispatch=dispatched)
    terminal = LogEntry(key="terminal", type=EventType.APPROVED, occurred_at=T0, step_index=0)
    assert await recorder.record_state(
        "ver_n1", state(), entries(T0, terminal), country="US", final=True
    ) == (3, 0)
    assert dispatched.events == []
    assert await store_records.undispatched_events(any_store, verification_id="ver_n1") == []
