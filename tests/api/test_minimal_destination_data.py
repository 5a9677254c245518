"""What the store keeps of a phone number: its mask (country code and last 2 digits), its
country and keyed hashes; never its number range (real dev server, worker, SQLite store)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
from sqlmodel import SQLModel

from otp.store import Store
from otp.store.tables import SandboxMessage, VerificationRecord
from tests.helpers.api import Keys, read_code, wrong_code

NUMBERS = ("+14155550123", "+14155550177")
PREFIX = "+1415555"
# Anything of the form +<digits and stars>: only masks may appear, and only this one.
PHONE_TOKEN = re.compile(r"\+[0-9*]{4,}")
MASK = re.compile(r"^\+1\*{8}[0-9]{2}$")


async def _every_stored_value(store: Store) -> list[tuple[str, str, str]]:
    """(table, column, value as text) for every column of every row of every table,
    the sandbox inbox excepted (it holds test-mode messages, numbers included, by design)."""
    found: list[tuple[str, str, str]] = []
    async with store.engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            if table.name == SandboxMessage.__tablename__:
                continue
            for row in (await conn.execute(table.select())).mappings():
                for column, value in row.items():
                    if value is None:
                        continue
                    shown = json.dumps(value) if isinstance(value, dict | list) else str(value)
                    found.append((table.name, column, shown))
    return found


async def _sent(http: httpx.AsyncClient, keys: Keys, vid: str) -> None:
    """Wait until the verification's send is in its event log."""
    for _ in range(300):
        response = await http.get(f"/v1/verifications/{vid}/events", headers=keys.test_headers)
        if response.status_code == 200 and "sent" in [e["type"] for e in response.json()["data"]]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{vid} never logged its send")


async def test_no_column_holds_a_number_range_or_more_than_the_mask(
    http: httpx.AsyncClient, keys: Keys, worker: None, store: Store
) -> None:
    ids: list[str] = []
    for to in NUMBERS:
        created = await http.post(
            "/v1/verifications",
            json={
                "to": to,
                "channels": [{"channel": "sms", "timeout_s": 60}, {"channel": "voice"}],
                "client_ref": "privacy",
            },
            headers=keys.test_headers,
        )
        assert created.status_code == 201, created.text
        body: dict[str, Any] = created.json()
        assert MASK.match(body["to"]), body["to"]
        assert all(MASK.match(step["to"]) for step in body["channels"])
        ids.append(body["id"])
    # A wrong check (failed-check counters), then the right one (the final batch).
    code = await read_code(http, keys, ids[0])
    wrong = await http.post(
        f"/v1/verifications/{ids[0]}/check",
        json={"code": wrong_code(code)},
        headers=keys.test_headers,
    )
    assert wrong.status_code == 200, wrong.text
    right = await http.post(
        f"/v1/verifications/{ids[0]}/check", json={"code": code}, headers=keys.test_headers
    )
    assert right.json()["status"] == "approved"
    for vid in ids:
        await _sent(http, keys, vid)
    for _ in range(200):
        async with store.session() as session:
            record = await session.get(VerificationRecord, ids[0])
        if record is not None and record.final:
            break
        await asyncio.sleep(0.05)
    assert record is not None and record.final

    values = await _every_stored_value(store)
    assert {table for table, _, _ in values} >= {
        "verifications",
        "verification_events",
        "verification_destinations",
        "rate_hits",
    }
    for table, column, value in values:
        where = f"{table}.{column}"
        assert PREFIX not in value and PREFIX[1:] not in value, where
        for number in NUMBERS:
            assert number[2:] not in value, where
        for token in PHONE_TOKEN.findall(value):
            assert MASK.match(token), (where, token)

    # What the API answers shows the same mask.
    state = await http.get(f"/v1/verifications/{ids[1]}", headers=keys.test_headers)
    assert state.json()["to"] == "+1********77"
    events = await http.get(f"/v1/verifications/{ids[1]}/events", headers=keys.test_headers)
    assert {e.get("to") for e in events.json()["data"]} <= {"+1********77", None}
    # Country stays; the range is kept as its keyed hash (conversion monitoring).
    assert record.country == "US" and record.to_masked == "+1********23"
    assert re.fullmatch(r"[0-9a-f]{64}", getattr(record, "prefix_hash", "") or "")
