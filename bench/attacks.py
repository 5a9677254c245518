"""Scripted attacks against the running service: SMS pumping and code brute force.

    python -m bench.attacks

Starts its own dev server, worker and API (test mode: the sandbox provider stands for
the SMS provider, so every message it holds is a provider call) with the fraud controls
at their defaults, and prints what each attack achieved. Exit status 1 if any attack got
a provider call past a limit.

- pumping (velocity): 60 verifications to 60 numbers of one range (+1 415 555 xxxx),
  none ever approved, as fast as possible: the per-prefix limit (30 an hour) stops it.
- pumping (conversion): the same against an application that tuned its limits away but
  keeps conversion monitoring (min volume 10, no grace): once 10 unconverted sends are
  judged, the range is blocked automatically and every later send is refused.
- brute force: guess codes for one phone number for as long as the service lets us,
  starting new verifications when one runs out of attempts: per verification 5 checks,
  per destination 5 sends in 10 minutes, so at most 25 guesses of 10^6 in 10 minutes.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.drills import Stack

ADMIN_TOKEN = "attack-drill-admin-token-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
RANGE = "+1415555"
VICTIM = "+14155550100"


@dataclass
class Outcome:
    name: str
    rows: list[tuple[str, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def row(self, label: str, value: object) -> None:
        self.rows.append((label, str(value)))


def provider_calls(stack: Stack, prefix: str) -> int:
    with sqlite3.connect(stack.sandbox_db) as conn:
        (count,) = conn.execute(
            'SELECT count(*) FROM sandbox_messages WHERE "to" LIKE ?', (prefix + "%",)
        ).fetchone()
    return int(count)


async def new_key(http: httpx.AsyncClient, name: str, risk: dict[str, Any] | None) -> str:
    app = await http.post(
        "/v1/admin/applications", json={"name": name, "risk": risk or {}}, headers=ADMIN
    )
    app.raise_for_status()
    key = await http.post(
        f"/v1/admin/applications/{app.json()['id']}/keys", json={"mode": "test"}, headers=ADMIN
    )
    key.raise_for_status()
    return str(key.json()["key"])


async def pumping_velocity(stack: Stack, http: httpx.AsyncClient) -> Outcome:
    out = Outcome("pumping: velocity limits")
    auth = {"Authorization": f"Bearer {await new_key(http, 'velocity', None)}"}
    statuses: Counter[str] = Counter()

    async def one(i: int) -> None:
        r = await http.post("/v1/verifications", json={"to": f"{RANGE}{1000 + i}"}, headers=auth)
        statuses[f"{r.status_code} {r.json().get('limit', '')}".strip()] += 1

    await asyncio.gather(*(one(i) for i in range(60)))
    await asyncio.sleep(2)  # let every accepted verification deliver
    sent = provider_calls(stack, f"{RANGE}1")
    out.row("verifications attempted", 60)
    out.row("answers", ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())))
    out.row("provider calls (limit 30 per prefix per hour)", sent)
    if sent > 30:
        out.failures.append(f"{sent} provider calls past the per-prefix limit of 30")
    return out


async def pumping_conversion(stack: Stack, http: httpx.AsyncClient) -> Outcome:
    out = Outcome("pumping: conversion monitoring")
    risk = {
        "per_destination": None,
        "per_prefix": None,
        "conversion_min_volume": 10,
        "conversion_grace_s": 0,
    }
    auth = {"Authorization": f"Bearer {await new_key(http, 'conversion', risk)}"}
    statuses: Counter[str] = Counter()
    ended: Counter[str] = Counter()
    for i in range(40):  # one after the other: each is judged before the next
        r = await http.post("/v1/verifications", json={"to": f"{RANGE}{2000 + i}"}, headers=auth)
        statuses[f"{r.status_code} {r.json().get('reason', '')}".strip()] += 1
        if r.status_code == 201:
            vid = r.json()["id"]
            for _ in range(100):
                state = (await http.get(f"/v1/verifications/{vid}", headers=auth)).json()
                if state["deliveries"] and state["deliveries"][-1]["status"] != "sending":
                    break
                await asyncio.sleep(0.05)
            ended[state["status"]] += 1
    sent = provider_calls(stack, f"{RANGE}2")
    out.row("verifications attempted", 40)
    out.row("create answers", ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())))
    out.row("started verifications by status", dict(ended))
    out.row("provider calls (min volume 10)", sent)
    if sent > 10:
        out.failures.append(f"{sent} provider calls past the conversion block at 10")
    return out


async def brute_force(stack: Stack, http: httpx.AsyncClient) -> Outcome:
    out = Outcome("brute force: guessing codes")
    auth = {"Authorization": f"Bearer {await new_key(http, 'brute', None)}"}
    guesses = counted = refused_creates = 0
    answers: Counter[str] = Counter()
    started = time.monotonic()
    for _ in range(12):  # new verifications for the same number, as an attacker would
        r = await http.post("/v1/verifications", json={"to": VICTIM}, headers=auth)
        if r.status_code != 201:
            refused_creates += 1
            answers[f"create {r.status_code} {r.json().get('limit', '')}".strip()] += 1
            continue
        vid = r.json()["id"]
        for n in range(10):
            guesses += 1
            c = await http.post(
                f"/v1/verifications/{vid}/check", json={"code": f"{n:06d}"}, headers=auth
            )
            answers[f"check {c.status_code}"] += 1
            if c.status_code == 200:
                counted += 1
    sent = provider_calls(stack, VICTIM)
    out.row("guesses sent", guesses)
    out.row("guesses the service compared", counted)
    out.row("answers", ", ".join(f"{k}: {v}" for k, v in sorted(answers.items())))
    out.row("verifications refused (per destination)", refused_creates)
    out.row("provider calls to the number (limit 5 per 10 min)", sent)
    out.row("wall time", f"{time.monotonic() - started:.1f} s")
    if sent > 5:
        out.failures.append(f"{sent} provider calls to one number past the limit of 5")
    if counted > 25:
        out.failures.append(f"{counted} guesses compared, more than 5 sends x 5 attempts")
    return out


async def main() -> int:
    stack = Stack("attacks")
    stack.env["OTP_ADMIN_TOKEN"] = ADMIN_TOKEN
    outcomes: list[Outcome] = []
    try:
        await stack.start_server()
        async with stack.http() as http:
            await stack.start_api(http)
            stack.start_worker()
            await asyncio.sleep(2)
            for attack in (pumping_velocity, pumping_conversion, brute_force):
                outcomes.append(await attack(stack, http))
    finally:
        stack.stop_all()
    failed = False
    for outcome in outcomes:
        verdict = "STOPPED" if not outcome.failures else "GOT THROUGH"
        print(f"\n{outcome.name}: {verdict}")
        for label, value in outcome.rows:
            print(f"  {label:<50} {value}")
        for failure in outcome.failures:
            print(f"  ! {failure}")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    from otp.process import run_and_exit

    run_and_exit(lambda: asyncio.run(main()))
