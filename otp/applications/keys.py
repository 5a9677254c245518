"""Application and API-key ids and the API keys themselves: their formats, in one place.

- application ids: `app_` + 26 lowercase base32 characters (128 random bits), or `default`;
- key ids: `key_` + 26 lowercase base32 characters;
- API keys: `otp_test_` / `otp_live_` + 43 base62 characters (32 random bytes). Only their
  SHA-256 is stored, with a hint (prefix + last four characters) to recognise them in a list.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from otp.domain import Mode
from otp.domain.ids import random_id

APPLICATION_ID_RE = re.compile(r"^(?:default|app_[a-z2-7]{26})$")
KEY_ID_RE = re.compile(r"^key_[a-z2-7]{26}$")
KEY_HINT_TAIL = 4

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_KEY_BYTES = 32
_KEY_BODY_LEN = 43  # 62**43 > 2**256


def new_application_id() -> str:
    return random_id("app_")


def new_key_id() -> str:
    return random_id("key_")


def key_prefix(mode: Mode) -> str:
    return f"otp_{mode.value}_"


def new_api_key(mode: Mode) -> str:
    """A new key: `otp_<mode>_` + 32 random bytes in base62 (43 characters)."""
    number = int.from_bytes(secrets.token_bytes(_KEY_BYTES), "big")
    digits = []
    for _ in range(_KEY_BODY_LEN):
        number, digit = divmod(number, 62)
        digits.append(_BASE62[digit])
    return key_prefix(mode) + "".join(reversed(digits))


def hash_api_key(key: str) -> str:
    """What the store and the settings keep of a key: its SHA-256 in hex."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_hint(key: str) -> str:
    """What a list shows of a key: its prefix and last four characters."""
    for mode in Mode:
        prefix = key_prefix(mode)
        if key.startswith(prefix):
            return f"{prefix}…{key[-KEY_HINT_TAIL:]}"
    return f"…{key[-KEY_HINT_TAIL:]}"
