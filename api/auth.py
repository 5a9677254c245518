"""API keys: parsed from settings once, kept only as SHA-256 hashes, compared in constant time.

Accepted `OTP_API_KEYS` entries (comma-separated):
- a raw key, `otp_test_...` or `otp_live_...` (hashed at startup, the raw key is dropped);
- `sha256:test:<hex>` / `sha256:live:<hex>`: the hash of a key of that mode;
- `sha256:<hex>`: the hash of a key whose mode is read from its own prefix.
In dev (`OTP_ENV=dev`) the dev stack's test key (`dev_api_key`) is accepted too.

The mode always comes from the presented key's prefix (and must agree with a declared
one). Every application is "default" until applications exist.
"""

from __future__ import annotations

import hmac
import logging
import re
from dataclasses import dataclass

from otp.domain import Mode
from otp.settings import ConfigError, Settings, dev_api_key, hash_api_key

logger = logging.getLogger("otp.api")

DEFAULT_APPLICATION_ID = "default"
_HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_KEY_PREFIXES = {mode: f"otp_{mode.value}_" for mode in Mode}


@dataclass(frozen=True)
class Principal:
    """Who is calling: the application the key belongs to and the key's mode."""

    application_id: str
    mode: Mode


@dataclass(frozen=True)
class _KnownKey:
    digest: bytes  # hex SHA-256 of the key, ASCII
    mode: Mode | None  # None: take it from the presented key's prefix


def _mode_of(key: str) -> Mode | None:
    for mode, prefix in _KEY_PREFIXES.items():
        if key.startswith(prefix) and len(key) > len(prefix):
            return mode
    return None


def _parse_entry(entry: str, position: int) -> _KnownKey:
    # Error messages name the entry's position, never its content (it may be a secret).
    if entry.startswith("sha256:"):
        parts = entry.split(":")
        if len(parts) == 2:
            mode_text, digest = None, parts[1]
        elif len(parts) == 3:
            mode_text, digest = parts[1], parts[2]
        else:
            raise ConfigError(f"OTP_API_KEYS entry {position} must be sha256:[test:|live:]<hex>")
        digest = digest.lower()
        if not _HEX_DIGEST.match(digest):
            raise ConfigError(f"OTP_API_KEYS entry {position} is not a 64-digit hex SHA-256")
        try:
            mode = Mode(mode_text) if mode_text is not None else None
        except ValueError:
            raise ConfigError(
                f"OTP_API_KEYS entry {position} names an unknown mode (use test or live)"
            ) from None
        return _KnownKey(digest.encode(), mode)
    mode = _mode_of(entry)
    if mode is None:
        raise ConfigError(
            f"OTP_API_KEYS entry {position} is neither an otp_test_/otp_live_ key "
            "nor a sha256:<mode>:<hex> hash"
        )
    return _KnownKey(hash_api_key(entry).encode(), mode)


class ApiKeyAuthenticator:
    """Knows the hashes of every accepted key; answers who a presented key belongs to."""

    def __init__(self, keys: list[_KnownKey]) -> None:
        self._keys = tuple(keys)

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiKeyAuthenticator:
        keys: list[_KnownKey] = []
        raw = settings.api_keys.get_secret_value() if settings.api_keys else ""
        entries = [part.strip() for part in raw.split(",") if part.strip()]
        for position, entry in enumerate(entries, start=1):
            keys.append(_parse_entry(entry, position))
        if settings.env == "dev":
            keys.append(_KnownKey(hash_api_key(dev_api_key(settings)).encode(), Mode.TEST))
        if not keys:
            logger.warning("no API keys are configured: every request will be rejected")
        return cls(keys)

    def __len__(self) -> int:
        return len(self._keys)

    def authenticate(self, presented: str | None) -> Principal | None:
        """The principal for a presented key, or None. Same work whatever the outcome."""
        candidate = hash_api_key(presented or "").encode()
        match: _KnownKey | None = None
        for known in self._keys:  # no early exit: the time does not depend on which matched
            if hmac.compare_digest(known.digest, candidate) and match is None:
                match = known
        if presented is None or match is None:
            return None
        mode = _mode_of(presented)
        if mode is None or (match.mode is not None and match.mode is not mode):
            return None
        return Principal(application_id=DEFAULT_APPLICATION_ID, mode=mode)
