"""Short per-process caches of what creates read for every request: the risk blocks,
the safe list, the routing rules and the prices of an application and mode, each re-read at most every few seconds (no
store query per create; the delivery gate in the worker checks again before any send).
The admin services clear them when they change blocks or the list, so this process sees
a change at once and the others within `ttl_s`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from otp.cost.book import PriceBook
from otp.cost.price_table import default_table
from otp.routing.rules import Rule
from otp.settings import Settings
from otp.store import Store
from otp.store import routing_rules as store_routing_rules
from otp.store import safe_list as store_safe_list
from otp.store.risk_blocks import list_active_blocks
from otp.store.tables import RiskBlock

T = TypeVar("T")

Scope = tuple[str, str]  # (application id, mode)

BLOCKS_CACHE_S = 5.0
SAFE_LIST_CACHE_S = 5.0
RULES_CACHE_S = 5.0


class ScopeCache(Generic[T]):
    """One value per scope, loaded again once it is `ttl_s` old; emptied when full."""

    def __init__(self, ttl_s: float, *, max_size: int | None = None) -> None:
        self.ttl_s = ttl_s
        self.max_size = max_size
        self._entries: dict[Scope, tuple[float, T]] = {}

    async def get(self, scope: Scope, load: Callable[[], Awaitable[T]]) -> T:
        now = time.monotonic()
        cached = self._entries.get(scope)
        if cached is not None and now - cached[0] < self.ttl_s:
            return cached[1]
        value = await load()
        if self.max_size is not None and len(self._entries) >= self.max_size:
            self._entries.clear()
        self._entries[scope] = (now, value)
        return value

    def clear(self) -> None:
        self._entries.clear()


@dataclass
class RiskCaches:
    """The process's caches (one per app, on `app.state.risk_caches`)."""

    blocks: ScopeCache[list[RiskBlock]] = field(
        default_factory=lambda: ScopeCache[list[RiskBlock]](BLOCKS_CACHE_S)
    )
    safe_list: ScopeCache[frozenset[str]] = field(
        default_factory=lambda: ScopeCache[frozenset[str]](SAFE_LIST_CACHE_S, max_size=10_000)
    )

    rules: ScopeCache[list[Rule]] = field(
        default_factory=lambda: ScopeCache[list[Rule]](RULES_CACHE_S, max_size=10_000)
    )

    async def routing_rules(self, store: Store, application_id: str) -> list[Rule]:
        """The application's routing rules (live creates route by them)."""
        return await self.rules.get(
            (application_id, "routing"),
            lambda: store_routing_rules.rules_of(store, application_id=application_id),
        )

    def clear_rules(self) -> None:
        self.rules.clear()

    prices: PriceBook | None = None

    def price_book(self, store: Store, settings: Settings) -> PriceBook:
        """The price table with applications' own prices (creates quote their first send)."""
        if self.prices is None:
            self.prices = PriceBook(
                store, default_table(currency=settings.currency, path=settings.price_table_path)
            )
        return self.prices

    async def active_blocks(self, store: Store, scope: Scope) -> list[RiskBlock]:
        """The blocks in force for the scope."""
        return await self.blocks.get(
            scope, lambda: list_active_blocks(store, application_id=scope[0], mode=scope[1])
        )

    async def safe_hashes(self, store: Store, scope: Scope) -> frozenset[str]:
        """The destination hashes on the scope's safe list."""
        return await self.safe_list.get(
            scope,
            lambda: store_safe_list.safe_hashes(store, application_id=scope[0], mode=scope[1]),
        )
