"""Provider prices of recent deliveries: asked of the provider where its receipt brought
none (Twilio prices a message once it settled, and its status callbacks seldom carry it).

Run by the monitor workflow on every tick. Each run asks for at most `limit` live
deliveries of the providers in `Settings.price_fetch_providers` that are at least
`min_age_s` old, have no price yet and were asked fewer than MAX_FETCHES times; each
delivery's price is fetched with the account that sent it (the application's own, else
the global one). A provider that does not answer is asked again on a later run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from temporalio import activity

from activities.accounts import AccountProviders
from otp.cost.reported import apply_reported_price
from otp.domain import ACTIVITY_FETCH_PRICES, FetchPricesInput, FetchPricesResult
from otp.risk.limits import Limiter
from otp.settings import Settings
from otp.store import Store
from otp.store.costs import note_fetched, unpriced
from providers.base import DeliveryError, Provider

logger = logging.getLogger("otp.activities")

MAX_FETCHES = 5


class ProviderPriceActivities:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        limiter: Limiter | None,
        providers_by_name: Mapping[str, Provider],
        accounts: AccountProviders | None = None,
    ) -> None:
        self._store = store
        self._limiter = limiter
        self._providers = [
            p.strip() for p in settings.price_fetch_providers.split(",") if p.strip()
        ]
        self._by_name = dict(providers_by_name)
        self._accounts = accounts

    async def _adapter(self, application_id: str, provider: str) -> Provider | None:
        if self._accounts is not None:
            own = await self._accounts.for_application(application_id)
            if provider in own:
                return own[provider]
        return self._by_name.get(provider)

    @activity.defn(name=ACTIVITY_FETCH_PRICES)
    async def fetch_provider_prices(self, input: FetchPricesInput) -> FetchPricesResult:
        """Ask the providers for the prices of recent unpriced deliveries."""
        if not self._providers:
            return FetchPricesResult()
        now = datetime.now(UTC)
        rows = await unpriced(
            self._store,
            providers=self._providers,
            sent_after=now - timedelta(seconds=input.max_age_s),
            sent_before=now - timedelta(seconds=input.min_age_s),
            max_fetches=MAX_FETCHES,
            limit=input.limit,
        )
        priced, unanswered = 0, []
        for row in rows:
            adapter = await self._adapter(row.application_id, row.provider)
            fetch = getattr(adapter, "fetch_price", None)
            if fetch is None or not row.provider_message_id:
                unanswered.append(row.delivery_key)
                continue
            try:
                micros, currency = await fetch(row.provider_message_id)
            except DeliveryError as exc:
                logger.info(
                    "price fetch failed: %s",
                    exc.reason,
                    extra={"verification_id": row.verification_id, "provider": row.provider},
                )
                micros, currency = None, None
            if micros is None or currency is None:
                unanswered.append(row.delivery_key)
                continue
            await apply_reported_price(
                self._store,
                self._limiter,
                provider=row.provider,
                micros=micros,
                currency=currency,
                delivery_key=row.delivery_key,
            )
            priced += 1
        await note_fetched(self._store, delivery_keys=unanswered)
        return FetchPricesResult(asked=len(rows), priced=priced)
