"""Prices as each process sees them: the price table plus each application's own prices,
re-read at most every `ttl_s` (5 s by default, as templates and routing rules).

The API quotes a create's first send with it (to charge the spend caps before any
workflow starts); the delivery activity quotes each send again with the message it
rendered (SMS segments) and the provider it chose. A store that cannot be read leaves the
table's prices: a quote never fails for it (logged as a warning).
"""

from __future__ import annotations

import logging

import phonenumbers
from cachetools import TTLCache

from otp.cost.price_table import PriceTable, Quote, overrides_table
from otp.domain import Channel
from otp.domain.destinations import country_of
from otp.store import Store
from otp.store.prices import override_rows

logger = logging.getLogger("otp.cost")

_CACHE_MAX = 4096
_SANDBOX = "sandbox"


def number_type_of(channel: Channel, to: str) -> str | None:
    """The `PhoneNumberType` name of a phone destination (`MOBILE`, `TOLL_FREE`, ...)."""
    if not channel.is_phone:
        return None
    try:
        number = phonenumbers.parse(to, None)
    except phonenumbers.NumberParseException:
        return None
    kind = phonenumbers.number_type(number)
    for name in dir(phonenumbers.PhoneNumberType):
        if name.isupper() and getattr(phonenumbers.PhoneNumberType, name) == kind:
            return name
    return None


class PriceBook:
    """The price table with each application's overrides (cached per application)."""

    def __init__(self, store: Store | None, table: PriceTable, *, ttl_s: float = 5.0) -> None:
        self._store = store
        self.table = table
        self._overrides: TTLCache[str, PriceTable | None] = TTLCache(maxsize=_CACHE_MAX, ttl=ttl_s)

    @property
    def currency(self) -> str:
        return self.table.currency

    async def overrides(self, application_id: str) -> PriceTable | None:
        if self._store is None:
            return None
        if application_id in self._overrides:
            return self._overrides[application_id]
        try:
            rows = await override_rows(self._store, application_id=application_id)
        except Exception:
            logger.warning("application prices unreadable; using the price table", exc_info=True)
            return None
        table = overrides_table(rows, currency=self.currency)
        self._overrides[application_id] = table
        return table

    def forget(self, application_id: str) -> None:
        """Drop the cached overrides of an application (after this process changed them)."""
        self._overrides.pop(application_id, None)

    async def quote(
        self,
        application_id: str,
        provider: str | None,
        channel: Channel,
        to: str,
        *,
        segments: int = 1,
    ) -> Quote:
        """The estimate of one send by `provider` (None or the sandbox: free) to `to`."""
        name = provider or _SANDBOX
        country = country_of(to) if channel.is_phone else None
        overrides = None if name == _SANDBOX else await self.overrides(application_id)
        return self.table.quote(
            name,
            channel,
            country=country,
            number_type=number_type_of(channel, to),
            segments=segments,
            overrides=overrides,
        )
