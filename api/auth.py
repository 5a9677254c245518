"""API keys: the store's keys of every application, plus keys from settings for `default`.

A presented key is hashed (SHA-256) and resolved against:
- the keys issued through the admin API or `otp keys create`, stored only as hashes,
  each belonging to an application and a mode;
- `OTP_API_KEYS` entries, which belong to the application `default`:
  a raw key `otp_test_...` / `otp_live_...` (hashed at startup, the raw key is dropped),
  `sha256:test:<hex>` / `sha256:live:<hex>` (the hash of a key of that mode), or
  `sha256:<hex>` (mode read from the presented key's own prefix);
- in dev (`OTP_ENV=dev`), the dev stack's test key (`dev_api_key`), also of `default`.

Unknown, revoked and malformed keys are refused alike, with the same work: every
presented key is hashed, compared with every settings key and looked up once in the
store. Results (refusals included) are cached in process for `CACHE_TTL_S` seconds, so
a revoked key stops working within that time on every API process (at once on the
process that revoked it). The mode always comes from the presented key's prefix.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import re
from dataclasses import dataclass, field

from cachetools import TTLCache
from sqlalchemy.exc import SQLAlchemyError

from otp.applications.keys import hash_api_key, key_prefix
from otp.applications.model import DEFAULT_APPLICATION_ID, ApplicationDefaults, ApplicationPublic
from otp.domain import Channel, Mode
from otp.risk.policy import RiskSettings
from otp.settings import ConfigError, Settings, dev_api_key
from otp.store import Store, utcnow
from otp.store.applications import (
    TOUCH_INTERVAL,
    KeyMatch,
    find_api_key,
    get_application,
    touch_api_key,
)

logger = logging.getLogger("otp.api")

__all__ = [
    "CACHE_TTL_S",
    "DEFAULT_APPLICATION_ID",
    "ApiKeyAuthenticator",
    "Principal",
    "StoreUnavailableError",
]

# Seconds an authentication result is reused: the longest a revoked key keeps working.
CACHE_TTL_S = 10.0
CACHE_MAX_ENTRIES = 10_000
_HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_KEY_PREFIXES = {mode: key_prefix(mode) for mode in Mode}


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's application and mode, and that application's policy."""

    application_id: str
    mode: Mode
    key_id: str | None = None  # None: a key from settings
    brand: str = ""
    defaults: ApplicationDefaults = field(default_factory=ApplicationDefaults, compare=False)
    allowed_channels: frozenset[Channel] = frozenset()  # empty: every channel
    risk: RiskSettings = field(default_factory=RiskSettings, compare=False)

    def allows(self, channel: Channel) -> bool:
        return not self.allowed_channels or channel in self.allowed_channels


class StoreUnavailableError(RuntimeError):
    """The store could not be asked about a key."""


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


def _principal_of(
    application: ApplicationPublic | None, application_id: str, mode: Mode, key_id: str | None
) -> Principal:
    if application is None:  # `default` before the store has its row: the API's own defaults
        return Principal(application_id=application_id, mode=mode, key_id=key_id)
    return Principal(
        application_id=application.id,
        mode=mode,
        key_id=key_id,
        brand=application.brand,
        defaults=application.defaults,
        allowed_channels=frozenset(application.allowed_channels),
        risk=application.risk,
    )


class ApiKeyAuthenticator:
    """Resolves presented keys to principals: settings keys in memory, the rest in the store."""

    def __init__(self, keys: list[_KnownKey], *, cache_ttl_s: float = CACHE_TTL_S) -> None:
        self._keys = tuple(keys)
        # Key hash -> its principal, or None for a refused key (refusals are cached too).
        self._cache: TTLCache[bytes, Principal | None] = TTLCache(
            maxsize=CACHE_MAX_ENTRIES, ttl=cache_ttl_s
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, *, cache_ttl_s: float = CACHE_TTL_S
    ) -> ApiKeyAuthenticator:
        keys: list[_KnownKey] = []
        raw = settings.api_keys.get_secret_value() if settings.api_keys else ""
        entries = [part.strip() for part in raw.split(",") if part.strip()]
        for position, entry in enumerate(entries, start=1):
            keys.append(_parse_entry(entry, position))
        if settings.env == "dev":
            keys.append(_KnownKey(hash_api_key(dev_api_key(settings)).encode(), Mode.TEST))
        return cls(keys, cache_ttl_s=cache_ttl_s)

    def __len__(self) -> int:
        """How many keys the settings hold (keys in the store are not counted)."""
        return len(self._keys)

    def _settings_match(self, presented: str | None, candidate: bytes) -> Mode | None:
        match: _KnownKey | None = None
        for known in self._keys:  # no early exit: the time does not depend on which matched
            if hmac.compare_digest(known.digest, candidate) and match is None:
                match = known
        if presented is None or match is None:
            return None
        mode = _mode_of(presented)
        if mode is None or (match.mode is not None and match.mode is not mode):
            return None
        return mode

    def authenticate(self, presented: str | None) -> Principal | None:
        """The principal of a settings key (application `default`), or None."""
        mode = self._settings_match(presented, hash_api_key(presented or "").encode())
        return None if mode is None else Principal(DEFAULT_APPLICATION_ID, mode)

    async def resolve(self, presented: str | None, store: Store) -> Principal | None:
        """The principal for a presented key, or None: settings keys, then the store.

        Raises StoreUnavailableError when the store cannot answer for a key that is not
        in the settings.
        """
        digest = hash_api_key(presented or "")
        candidate = digest.encode()
        settings_mode = self._settings_match(presented, candidate)
        with contextlib.suppress(KeyError):  # a miss, or expired
            return self._cache[candidate]
        principal: Principal | None = None
        try:
            found = await find_api_key(store, key_hash=digest)  # always exactly one lookup
            if settings_mode is not None:
                application = await get_application(store, application_id=DEFAULT_APPLICATION_ID)
                principal = _principal_of(application, DEFAULT_APPLICATION_ID, settings_mode, None)
            elif found is not None and presented is not None and _mode_of(presented) is found.mode:
                principal = _principal_of(
                    found.application, found.application.id, found.mode, found.key_id
                )
                await self._touch(store, found)
        except SQLAlchemyError as exc:
            if settings_mode is None:
                raise StoreUnavailableError("the store did not answer") from exc
            logger.warning("store unavailable; the settings key is used without its application")
            return Principal(DEFAULT_APPLICATION_ID, settings_mode)
        except ValueError:
            # Application settings the model refuses (written by hand): refuse the key.
            logger.error("stored application settings are invalid")
            principal = None
        self._cache[candidate] = principal
        return principal

    @staticmethod
    async def _touch(store: Store, found: KeyMatch) -> None:
        """Record the key's use, at most once a minute (most requests write nothing)."""
        last = found.last_used_at
        if last is not None and utcnow() - last < TOUCH_INTERVAL:
            return
        try:
            await touch_api_key(store, key_id=found.key_id)
        except SQLAlchemyError:
            logger.warning("could not record a key's last use", extra={"key_id": found.key_id})

    def forget(self, *, key_id: str | None = None, application_id: str | None = None) -> None:
        """Drop cached results of a key or of an application's keys (after revoke/update)."""
        with self._cache.timer:  # the clock stands still while the entries are read
            stale = [
                digest
                for digest, principal in self._cache.items()
                if principal is not None
                and (
                    (key_id is not None and principal.key_id == key_id)
                    or (application_id is not None and principal.application_id == application_id)
                )
            ]
        for digest in stale:
            self._cache.pop(digest, None)
