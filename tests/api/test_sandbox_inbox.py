"""The sandbox inbox's long poll: `wait` answers as soon as the code lands, or when it runs out."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.api.conftest import Keys, code_in


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
