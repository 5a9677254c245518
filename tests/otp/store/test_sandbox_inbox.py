"""The sandbox inbox's store queries, on SQLite and PostgreSQL: a message by delivery key
(a retry after the end asks it), and the newest id and the messages after an id (the
long poll's watcher)."""

from __future__ import annotations

from otp.store import Store


async def _land(store: Store, n: int, *, application_id: str = "app_a") -> None:
    await store.add_sandbox_message(
        idempotency_key=f"ver_{n}:run:1",
        message_id=f"sbx_{n}",
        verification_id=f"ver_{n}",
        application_id=application_id,
        channel="sms",
        to=f"+1415555010{n}",
        subject="",
        body="Your code is 123456.",
    )


async def test_messages_after_an_id_come_oldest_first_with_whom_to_wake(any_store: Store) -> None:
    assert await any_store.last_sandbox_message_id() == 0
    assert await any_store.sandbox_messages_after(0) == []
    await _land(any_store, 1)
    first = await any_store.last_sandbox_message_id()
    await _land(any_store, 2, application_id="app_b")
    await _land(any_store, 3)

    after = await any_store.sandbox_messages_after(first)
    assert [(a, t, v) for _, a, t, v in after] == [
        ("app_b", "+14155550102", "ver_2"),
        ("app_a", "+14155550103", "ver_3"),
    ]
    ids = [i for i, *_ in after]
    assert ids == sorted(ids) and ids[0] > first
    assert await any_store.last_sandbox_message_id() == ids[-1]
    assert await any_store.sandbox_messages_after(ids[-1]) == []
    assert len(await any_store.sandbox_messages_after(0, limit=2)) == 2


async def test_a_message_is_found_by_its_delivery_key(any_store: Store) -> None:
    await _land(any_store, 4)
    found = await any_store.find_sandbox_message(idempotency_key="ver_4:run:1")
    assert found is not None and found.message_id == "sbx_4"
    assert await any_store.find_sandbox_message(idempotency_key="ver_4:run:2") is None
