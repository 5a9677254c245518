"""Webhook endpoints, messages and attempts in the store (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from otp.store import Store
from otp.store import webhooks as db

APP = "app_store"


async def _endpoint(store: Store, *, mode: str = "test", events: list[str] | None = None) -> str:
    row = await db.create_endpoint(
        store,
        application_id=APP,
        mode=mode,
        url="https://example.com/hook",
        secret_sealed="v1.k.sealed",
        description="main",
        event_types=events or [],
    )
    return row.id


async def test_endpoint_crud_is_scoped_by_application_and_mode(any_store: Store) -> None:
    test_id = await _endpoint(any_store, mode="test")
    live_id = await _endpoint(any_store, mode="live")
    assert test_id.startswith("ep_") and test_id != live_id

    found = await db.get_endpoint(any_store, endpoint_id=test_id, application_id=APP, mode="test")
    assert found is not None and found.url == "https://example.com/hook"
    # Never across modes or applications.
    assert (
        await db.get_endpoint(any_store, endpoint_id=test_id, application_id=APP, mode="live")
        is None
    )
    assert (
        await db.get_endpoint(any_store, endpoint_id=test_id, application_id="other", mode="test")
        is None
    )
    listed = await db.list_endpoints(any_store, application_id=APP, mode="test")
    assert [e.id for e in listed] == [test_id]

    updated = await db.update_endpoint(
        any_store,
        endpoint_id=test_id,
        application_id=APP,
        mode="test",
        url="https://example.org/h",
        event_types=["verification.approved", "verification.approved"],
        enabled=False,
        disabled_reason="paused",
    )
    assert updated is not None
    assert updated.url == "https://example.org/h"
    assert updated.event_types == ["verification.approved"]
    assert not updated.enabled and updated.disabled_reason == "paused"
    assert updated.description == "main"  # untouched
    reenabled = await db.update_endpoint(
        any_store, endpoint_id=test_id, application_id=APP, mode="test", enabled=True
    )
    assert reenabled is not None and reenabled.enabled and reenabled.disabled_reason is None
    assert (
        await db.update_endpoint(
            any_store, endpoint_id=test_id, application_id=APP, mode="live", enabled=False
        )
        is None
    )

    assert not await db.delete_endpoint(
        any_store, endpoint_id=test_id, application_id=APP, mode="live"
    )
    assert await db.delete_endpoint(any_store, endpoint_id=test_id, application_id=APP, mode="test")
    assert (
        await db.get_endpoint(any_store, endpoint_id=test_id, application_id=APP, mode="test")
        is None
    )
    assert [e.id for e in await db.list_endpoints(any_store, application_id=APP, mode="live")] == [
        live_id
    ]


async def test_subscriptions_and_disable(any_store: Store) -> None:
    every = await _endpoint(any_store)
    approved_only = await _endpoint(any_store, events=["verification.approved"])
    await _endpoint(any_store, mode="live")

    async def subscribed(event_type: str) -> set[str]:
        rows = await db.list_subscribed_endpoints(
            any_store, application_id=APP, mode="test", event_type=event_type
        )
        return {row.id for row in rows}

    assert await subscribed("verification.approved") == {every, approved_only}
    assert await subscribed("verification.expired") == {every}

    assert await db.disable_endpoint(
        any_store, endpoint_id=every, application_id=APP, mode="test", reason="410 Gone"
    )
    assert await subscribed("verification.approved") == {approved_only}
    row = await db.get_endpoint(any_store, endpoint_id=every, application_id=APP, mode="test")
    assert row is not None and row.disabled_reason == "410 Gone"
    assert not await db.disable_endpoint(
        any_store, endpoint_id="ep_missing", application_id=APP, mode="test", reason="x"
    )


async def test_messages_are_inserted_once_and_track_progress(any_store: Store) -> None:
    ep = await _endpoint(any_store)
    first, created = await db.insert_message(
        any_store,
        message_id="msg_a",
        endpoint_id=ep,
        application_id=APP,
        mode="test",
        event_type="verification.approved",
        verification_id="ver_1",
    )
    again, created_again = await db.insert_message(
        any_store,
        message_id="msg_a",
        endpoint_id=ep,
        application_id=APP,
        mode="test",
        event_type="verification.approved",
        verification_id="ver_1",
    )
    assert created and not created_again and again.id == first.id
    # The same message to another endpoint is another row.
    other = await _endpoint(any_store)
    _, created_other = await db.insert_message(
        any_store,
        message_id="msg_a",
        endpoint_id=other,
        application_id=APP,
        mode="test",
        event_type="verification.approved",
    )
    assert created_other

    soon = datetime.now(UTC) + timedelta(seconds=5)
    row = await db.update_message(
        any_store,
        message_id="msg_a",
        endpoint_id=ep,
        attempts=1,
        last_status_code=500,
        next_attempt_at=soon,
    )
    assert row is not None and row.status == "pending" and row.attempts == 1
    assert row.next_attempt_at is not None
    # A late, stale write never moves attempts backwards.
    await db.update_message(
        any_store,
        message_id="msg_a",
        endpoint_id=ep,
        attempts=3,
        last_status_code=200,
        status="succeeded",
    )
    row = await db.update_message(
        any_store, message_id="msg_a", endpoint_id=ep, attempts=2, last_status_code=503
    )
    assert row is not None
    assert (row.status, row.attempts, row.last_status_code) == ("succeeded", 3, 200)
    assert row.next_attempt_at is None

    listed = await db.list_messages(any_store, application_id=APP, mode="test", endpoint_id=ep)
    assert [m.message_id for m in listed] == ["msg_a"]
    by_verification = await db.list_messages(
        any_store, application_id=APP, mode="test", verification_id="ver_1"
    )
    assert [(m.message_id, m.endpoint_id) for m in by_verification] == [("msg_a", ep)]
    assert await db.list_messages(any_store, application_id=APP, mode="live") == []
    assert (
        await db.get_message(
            any_store, message_id="msg_a", endpoint_id=ep, application_id=APP, mode="live"
        )
        is None
    )
    assert (
        await db.get_message(
            any_store, message_id="msg_a", endpoint_id=ep, application_id=APP, mode="test"
        )
        is not None
    )


async def test_attempts_are_recorded_once_per_number(any_store: Store) -> None:
    ep = await _endpoint(any_store)
    one, created = await db.record_attempt(
        any_store,
        message_id="msg_b",
        endpoint_id=ep,
        attempt=1,
        status_code=500,
        error="HTTP 500",
        duration_ms=12,
    )
    dup, created_dup = await db.record_attempt(
        any_store,
        message_id="msg_b",
        endpoint_id=ep,
        attempt=1,
        status_code=200,
        error=None,
        duration_ms=3,
    )
    assert created and not created_dup and dup.id == one.id and dup.status_code == 500
    await db.record_attempt(
        any_store,
        message_id="msg_b",
        endpoint_id=ep,
        attempt=2,
        status_code=None,
        error="ConnectTimeout" * 40,
        duration_ms=5000,
    )
    attempts = await db.list_attempts(any_store, message_id="msg_b", endpoint_id=ep)
    assert [(a.attempt, a.status_code) for a in attempts] == [(1, 500), (2, None)]
    assert attempts[1].error is not None and len(attempts[1].error) == 300
