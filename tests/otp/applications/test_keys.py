"""Ids and API keys: one generator for each format, used by the store and the dev stack."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from otp.applications.keys import (
    APPLICATION_ID_RE,
    KEY_ID_RE,
    hash_api_key,
    key_hint,
    new_api_key,
    new_application_id,
    new_key_id,
)
from otp.domain import Mode
from otp.settings import Settings, dev_api_key

KEY_RE = re.compile(r"^otp_(test|live)_[0-9A-Za-z]{43}$")


def test_ids_and_keys_have_their_formats() -> None:
    ids = {new_application_id() for _ in range(200)}
    assert len(ids) == 200 and all(APPLICATION_ID_RE.match(i) for i in ids)
    assert all(len(i) == len("app_") + 26 for i in ids)
    assert all(KEY_ID_RE.match(new_key_id()) for _ in range(50))
    assert APPLICATION_ID_RE.match("default")
    keys = {new_api_key(Mode.LIVE) for _ in range(200)}
    assert len(keys) == 200 and all(KEY_RE.match(k) for k in keys)
    assert all(k.startswith("otp_live_") for k in keys)
    assert new_api_key(Mode.TEST).startswith("otp_test_")


def test_a_key_is_stored_as_its_sha256_and_listed_by_its_hint() -> None:
    key = new_api_key(Mode.TEST)
    assert hash_api_key(key) == hashlib.sha256(key.encode()).hexdigest()
    assert key_hint(key) == f"otp_test_…{key[-4:]}"
    assert key_hint("unknown-prefix-abcd") == "…abcd"


def test_the_dev_stack_key_has_the_same_format_and_is_made_once(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, dev_api_key=None)
    first = dev_api_key(settings)
    assert KEY_RE.match(first) and first.startswith("otp_test_")
    assert dev_api_key(settings) == first
