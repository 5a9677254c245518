"""The worker's view of applications' own provider accounts: their adapters, cached.

`AccountProviders.for_application` answers the adapters an application's own accounts
give (by provider name), built with `providers.registry` from the account's fields laid
over the global settings, its secrets unsealed here and nowhere else. Two caches keep the
hot path to no store round trip most of the time: each application's accounts (ids and
versions, `LOOKUP_TTL_S`), and the built adapters per account id and version
(`ADAPTER_TTL_S`). A replaced account is picked up within `LOOKUP_TTL_S`; an adapter
evicted from its cache is closed after a grace period (a send may still be using it),
and every one is closed when the worker stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import httpx
from cachetools import TTLCache

from otp.applications.provider_accounts import account_settings, open_fields
from otp.security.sealing import SealError
from otp.settings import Secrets, Settings
from otp.store import Store
from otp.store import provider_accounts as db
from otp.store.tables import ProviderAccount
from providers.base import Provider
from providers.registry import build_provider

logger = logging.getLogger("otp.activities")

LOOKUP_TTL_S = 5.0
ADAPTER_TTL_S = 300.0
CLOSE_GRACE_S = 60.0
_MAX_APPLICATIONS = 10_000
_MAX_ADAPTERS = 2_000


class _ClosingCache(TTLCache[Any, Provider]):
    """A TTL cache that hands every adapter it drops to `on_drop`."""

    def __init__(self, maxsize: int, ttl: float, on_drop: Any) -> None:
        super().__init__(maxsize, ttl)
        self._on_drop = on_drop

    def popitem(self) -> tuple[Any, Provider]:
        key, value = super().popitem()
        self._on_drop(value)
        return key, value

    def expire(self, time: float | None = None) -> list[tuple[Any, Provider]]:
        expired = super().expire(time)
        for _, value in expired:
            self._on_drop(value)
        return expired


class AccountProviders:
    """Adapters of applications' own provider accounts (live mode only)."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        secrets: Secrets,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._secrets = secrets
        self._http = http
        self._accounts: TTLCache[str, tuple[ProviderAccount, ...]] = TTLCache(
            _MAX_APPLICATIONS, LOOKUP_TTL_S
        )
        self._adapters = _ClosingCache(_MAX_ADAPTERS, ADAPTER_TTL_S, self._close_later)
        self._closing: set[asyncio.Task[None]] = set()
        self._stopping = False

    async def for_application(self, application_id: str) -> Mapping[str, Provider]:
        """The application's own adapters by provider name (empty: the global ones apply)."""
        accounts = self._accounts.get(application_id)
        if accounts is None:
            accounts = tuple(await db.list_accounts(self._store, application_id=application_id))
            self._accounts[application_id] = accounts
        out: dict[str, Provider] = {}
        for account in accounts:
            adapter = self.adapter(account)
            if adapter is not None:
                out[account.provider] = adapter
        return out

    async def for_account(self, application_id: str, provider: str) -> Provider | None:
        """The adapter of one account, read fresh from the store (for a test send)."""
        account = await db.get_account(
            self._store, application_id=application_id, provider=provider
        )
        return None if account is None else self.adapter(account)

    def adapter(self, account: ProviderAccount) -> Provider | None:
        """The account's adapter, built once per account version (None: cannot be opened)."""
        key = (account.id, account.version)
        adapter = self._adapters.get(key)
        if adapter is not None:
            return adapter
        try:
            fields = open_fields(
                self._secrets,
                application_id=account.application_id,
                provider=account.provider,
                settings=account.settings,
                secrets_sealed=account.secrets_sealed,
            )
        except SealError:
            logger.warning(
                "provider account cannot be unsealed; using the global account",
                extra={"account_id": account.id, "provider": account.provider},
            )
            return None
        settings = account_settings(self._settings, account.provider, fields)
        adapter = build_provider(settings, account.provider, self._http, account_id=account.id)
        self._adapters[key] = adapter
        return adapter

    def _close_later(self, adapter: Provider) -> None:
        if self._stopping:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # evicted outside the event loop: nothing can be awaited
            return
        task = loop.create_task(_close(adapter, delay_s=CLOSE_GRACE_S))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        """Close every adapter (cached or waiting to be closed): the worker is stopping."""
        self._stopping = True
        adapters = list(self._adapters.values())
        self._adapters.clear()
        pending = list(self._closing)
        for task in pending:
            task.cancel()  # a cancelled wait closes its adapter at once
        await asyncio.gather(*pending, *(_close(a) for a in adapters), return_exceptions=True)


async def _close(adapter: Provider, *, delay_s: float = 0.0) -> None:
    try:
        if delay_s:
            await asyncio.sleep(delay_s)
    except asyncio.CancelledError:
        pass
    closer = getattr(adapter, "aclose", None)
    if closer is not None:
        await closer()
