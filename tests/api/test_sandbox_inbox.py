"""The sandbox inbox's long poll: `wait` answers as soon as the code lands, or when it runs out."""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx

from api.inbox import InboxWatch
from otp.store import Store
from tests.helpers.api import Keys, code_in


async def test_a_long_poll_answers_with_the_code_as_soon_as_it_lands(
    http: httpx.AsyncClient, keys: Keys, worker: None
) -> None:
    created = await http.post(
        "/v1/verifications", json={"to": "+14155550188"}, headers=keys.test_headers
    )
    assert created.status_code == 201, created.text
    vid = created.json()["id"]

    t0 = time.monotonic()
    inbox = await http.get(
        "/v1/sandbox/messages",
        params={"verification_id": vid, "wait": 15},
        headers=keys.test_headers,
    )
    waited = time.monotonic() - t0
    assert inbox.status_code == 200, inbox.text
    [message] = inbox.json()["messages"]
    assert waited < 10  # answered when the message came, not at the end of the wait
    check = await http.post(
        f"/v1/verifications/{vid}/check", json={"code": code_in(message)}, headers=keys.test_headers
    )
    assert check.json()["status"] == "approved"


async def test_a_long_poll_with_nothing_to_read_answers_empty_when_the_wait_ends(
    http: httpx.AsyncClient, keys: Keys
) -> None:
    t0 = time.monotonic()
    inbox = await http.get(
        "/v1/sandbox/messages",
        params={"to": "+14155550199", "wait": 0.6},
        headers=keys.test_headers,
    )
    waited = time.monotonic() - t0
    assert inbox.status_code == 200, inbox.text
    assert inbox.json() == {"messages": []}
    assert 0.6 <= waited < 3


async def test_without_wait_the_inbox_answers_at_once(http: httpx.AsyncClient, keys: Keys) -> None:
    t0 = time.monotonic()
    inbox = await http.get(
        "/v1/sandbox/messages", params={"to": "+14155550199"}, headers=keys.test_headers
    )
    assert inbox.status_code == 200 and inbox.json() == {"messages": []}
    assert time.monotonic() - t0 < 1


async def test_a_wait_out_of_range_is_a_problem(http: httpx.AsyncClient, keys: Keys) -> None:
    for wait in ("-1", "21", "soon", "nan", "inf"):
        answer = await http.get(
            "/v1/sandbox/messages", params={"wait": wait}, headers=keys.test_headers
        )
        assert answer.status_code == 422, (wait, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        [error] = answer.json()["errors"]
        assert (error["in"], error["parameter"]) == ("query", "wait")


async def test_a_live_key_waits_for_nothing(http: httpx.AsyncClient, keys: Keys) -> None:
    answer = await asyncio.wait_for(
        http.get("/v1/sandbox/messages", params={"wait": 10}, headers=keys.live_headers),
        timeout=2,
    )
    assert answer.status_code == 403


# ---------------------------------------------------------------- the watcher itself
async def _land(store: Store, n: int, *, application_id: str, verification_id: str) -> None:
    await store.add_sandbox_message(
        idempotency_key=f"key-{n}",
        message_id=f"sbx_{n}",
        verification_id=verification_id,
        application_id=application_id,
        channel="sms",
        to="+14155550100",
        subject="",
        body="Your code is 123456.",
    )


async def test_one_watcher_wakes_only_the_waiter_a_message_is_for(store: Store) -> None:
    watch = InboxWatch(store, interval=0.05)
    async with contextlib.AsyncExitStack() as stack:
        waiters = [
            await stack.enter_async_context(
                watch.watching(application_id="app_a", to=None, verification_id=f"ver_{i}")
            )
            for i in range(10)
        ]
        waits = [asyncio.create_task(w.wait(5)) for w in waiters]
        await asyncio.sleep(0.2)
        await _land(store, 1, application_id="app_b", verification_id="ver_3")  # someone else's
        await _land(store, 2, application_id="app_a", verification_id="ver_3")
        t0 = time.monotonic()
        await asyncio.wait_for(waits[3], timeout=2)
        assert time.monotonic() - t0 < 0.5
        await asyncio.sleep(0.2)
        assert [t.done() for t in waits] == [i == 3 for i in range(10)]
        # One read of the store per tick for all ten waiters, not one per waiter.
        elapsed_ticks = (time.monotonic() - t0 + 0.4) / watch.interval
        assert watch.reads <= elapsed_ticks + 3, (watch.reads, elapsed_ticks)
        for task in waits:
            task.cancel()
    await asyncio.sleep(0.2)  # the last waiter left: the watcher stops polling
    reads = watch.reads
    await asyncio.sleep(0.3)
    assert watch.reads == reads
    await watch.close()
