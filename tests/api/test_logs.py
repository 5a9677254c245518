"""Structured logs of a whole verification: one JSON object per line, every line about a
verification names it and its application, and none holds a code, a secret or a full
destination."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest

from otp.observability.logs import JsonFormatter
from otp.settings import Secrets, Settings
from tests.helpers.api import Keys, read_code, wrong_code

PHONE = "+14155550188"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_a_verification_logs_structured_lines_without_secrets(
    http: httpx.AsyncClient,
    keys: Keys,
    worker: None,
    captured: io.StringIO,
    secrets: Secrets,
    api_settings: Settings,
) -> None:
    created = await http.post("/v1/verifications", json={"to": PHONE}, headers=keys.test_headers)
    vid = created.json()["id"]
    code = await read_code(http, keys, vid)
    await http.post(
        f"/v1/verifications/{vid}/check", json={"code": wrong_code(code)}, headers=keys.test_headers
    )
    approved = await http.post(
        f"/v1/verifications/{vid}/check", json={"code": code}, headers=keys.test_headers
    )
    assert approved.json()["status"] == "approved"
    for _ in range(100):  # the worker's final record is logged last
        if "verification recorded" in captured.getvalue():
            break
        await asyncio.sleep(0.05)

    lines = [line for line in captured.getvalue().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"ts", "level", "logger", "msg"} <= set(e) for e in entries)

    mine = [e for e in entries if e.get("verification_id") == vid]
    loggers = {e["logger"] for e in mine}
    assert {"otp.api", "otp.activities"} <= loggers, loggers
    for entry in mine:
        assert entry.get("application_id") == "default", entry

    (codec_key,) = secrets.codec_keys.values()
    forbidden = {
        "full destination": PHONE,
        "national number": PHONE[2:],
        "api key": keys.test,
        "code secret": secrets.code_secret.decode(),
        "codec key": base64.b64encode(codec_key).decode(),
    }
    for entry in entries:
        # The code is 6 digits: timestamps and durations may hold any 6 digits, so look
        # for it only in the fields that carry text.
        text = json.dumps({k: v for k, v in entry.items() if isinstance(v, str) and k != "ts"})
        assert f'"{code}"' not in text and f" {code}" not in text, entry
        for what, value in forbidden.items():
            assert value not in json.dumps(entry), (what, entry)
