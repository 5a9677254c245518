"""Concurrency over HTTP: parallel correct checks approve once, one winner only.

Each test starts a fresh verification through the API served by uvicorn on a real
socket, against the real dev server and a real worker, reads the code from the sandbox
inbox, then fires its requests at once with `asyncio.gather` and asserts exact counts.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import httpx

from tests.end_to_end.conftest import Api
from tests.helpers.api import read_code, wrong_code

PHONE = "+1 415 555 0142"


async def _start(api: Api, **extra: Any) -> tuple[str, str]:
    """A new verification and the code its first delivery put in the sandbox inbox."""
    created = await api.http.post("/v1/verifications", json={"to": PHONE, **extra})
    assert created.status_code == 201, created.text
    vid: str = created.json()["id"]
    return vid, await read_code(api.http, api.keys, vid)


def _summary(responses: list[httpx.Response]) -> Counter[tuple[int, str]]:
    """(HTTP status, verification status) per answer, for readable assertion messages."""
    out: Counter[tuple[int, str]] = Counter()
    for r in responses:
        body = r.json()
        out[(r.status_code, str(body.get("status_of_verification", body.get("status"))))] += 1
    return out


def _assert_no_5xx(responses: list[httpx.Response]) -> None:
    errors = [(r.status_code, r.text) for r in responses if r.status_code >= 500]
    assert not errors, errors


def _assert_finished(response: httpx.Response, vid: str, path: str, status: str) -> None:
    """A 409 problem naming the verification's final status."""
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:otp:problem:verification-finished"
    assert problem["status_of_verification"] == status, problem
    assert problem["instance"] == f"/v1/verifications/{vid}/{path}"


async def _state(api: Api, vid: str) -> dict[str, Any]:
    got = await api.http.get(f"/v1/verifications/{vid}")
    assert got.status_code == 200, got.text
    state: dict[str, Any] = got.json()
    return state


async def test_20_parallel_correct_checks_approve_exactly_once(api: Api) -> None:
    vid, code = await _start(api)
    url = f"/v1/verifications/{vid}/check"

    t0 = time.monotonic()
    responses = await asyncio.gather(*(api.http.post(url, json={"code": code}) for _ in range(20)))
    elapsed = time.monotonic() - t0
    print(f"\n20 correct checks: {elapsed:.2f}s {dict(_summary(responses))}")

    _assert_no_5xx(responses)
    ok = [r for r in responses if r.status_code == 200]
    assert len(ok) == 1, _summary(responses)
    assert ok[0].json() == {"id": vid, "status": "approved", "valid": True, "attempts_remaining": 4}
    rest = [r for r in responses if r.status_code != 200]
    assert len(rest) == 19, _summary(responses)
    for r in rest:
        _assert_finished(r, vid, "check", "approved")

    state = await _state(api, vid)
    assert state["status"] == "approved"
    assert state["attempts_used"] == 1
    assert state["attempts_remaining"] == 4


async def test_100_parallel_wrong_checks_count_exactly_max_attempts(api: Api) -> None:
    vid, code = await _start(api, max_attempts=5)
    url = f"/v1/verifications/{vid}/check"
    wrong = wrong_code(code)

    t0 = time.monotonic()
    responses = await asyncio.gather(
        *(api.http.post(url, json={"code": wrong}) for _ in range(100))
    )
    elapsed = time.monotonic() - t0
    print(f"\n100 wrong checks: {elapsed:.2f}s {dict(_summary(responses))}")

    _assert_no_5xx(responses)
    ok = sorted(
        (r.json() for r in responses if r.status_code == 200),
        key=lambda body: -int(body["attempts_remaining"]),
    )
    assert [body["attempts_remaining"] for body in ok] == [4, 3, 2, 1, 0], ok
    assert all(body["id"] == vid and body["valid"] is False for body in ok), ok
    assert [body["status"] for body in ok] == ["pending"] * 4 + ["max_attempts_reached"], ok
    rest = [r for r in responses if r.status_code != 200]
    assert len(rest) == 95, _summary(responses)
    for r in rest:
        _assert_finished(r, vid, "check", "max_attempts_reached")

    state = await _state(api, vid)
    assert state["status"] == "max_attempts_reached"
    assert state["attempts_used"] == 5
    assert state["attempts_remaining"] == 0
    assert elapsed < 40, f"100 parallel checks took {elapsed:.1f}s"


async def test_correct_checks_racing_a_cancel_have_one_winner(api: Api) -> None:
    vid, code = await _start(api)
    check_url = f"/v1/verifications/{vid}/check"

    checks = [api.http.post(check_url, json={"code": code}) for _ in range(10)]
    cancel = api.http.post(f"/v1/verifications/{vid}/cancel")
    t0 = time.monotonic()
    # The cancel is sent in the middle of the checks.
    answered = await asyncio.gather(*checks[:5], cancel, *checks[5:])
    canceled = answered.pop(5)
    answers = answered
    elapsed = time.monotonic() - t0
    state = await _state(api, vid)
    final = state["status"]
    print(
        f"\n10 checks + 1 cancel: {elapsed:.2f}s final={final} "
        f"checks={dict(_summary(answers))} cancel={canceled.status_code}"
    )

    _assert_no_5xx([*answers, canceled])
    assert final in {"approved", "canceled"}, state
    if final == "approved":
        ok = [r for r in answers if r.status_code == 200]
        assert len(ok) == 1, _summary(answers)
        assert ok[0].json() == {
            "id": vid,
            "status": "approved",
            "valid": True,
            "attempts_remaining": 4,
        }
        for r in answers:
            if r.status_code != 200:
                _assert_finished(r, vid, "check", "approved")
        _assert_finished(canceled, vid, "cancel", "approved")
        assert state["attempts_used"] == 1
    else:
        assert canceled.status_code == 200, canceled.text
        assert canceled.json() == {"id": vid, "status": "canceled"}
        for r in answers:
            _assert_finished(r, vid, "check", "canceled")
        assert state["attempts_used"] == 0
