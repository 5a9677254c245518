"""A provider's own price for a delivery (its receipt, or a later fetch of the message):
kept beside the estimate, and counted by the spend caps where it is higher.

Rules:
- The price is written to the delivery's cost row (by delivery key, else by the
  provider's message id); a delivery never costed has nothing to correct.
- A price in the deployment's currency above the estimate charges the difference to the
  spend caps of the period the send was made in (forced: the money is spent). A price
  below it refunds nothing: the caps stay conservative.
- A price in another currency is kept, flagged by its currency, and not counted.
"""

from __future__ import annotations

import logging
from datetime import datetime

from otp.cost import caps
from otp.domain import Mode
from otp.risk.limits import Limiter
from otp.store import Store
from otp.store.costs import set_reported_price

logger = logging.getLogger("otp.cost")


async def apply_reported_price(
    store: Store,
    limiter: Limiter | None,
    *,
    provider: str,
    micros: int,
    currency: str,
    delivery_key: str | None = None,
    provider_message_id: str | None = None,
    at: datetime | None = None,
) -> bool:
    """Record the provider's price; whether a costed delivery took it."""
    before = await set_reported_price(
        store,
        provider=provider,
        micros=micros,
        currency=currency,
        delivery_key=delivery_key,
        provider_message_id=provider_message_id,
        at=at,
    )
    if before is None:
        return False
    already = before.reported_micros if before.reported_currency == before.currency else None
    counted = max(before.estimate_micros, already or 0)
    extra = micros - counted
    if limiter is None or currency != before.currency or extra <= 0:
        return True
    from otp.store.applications import get_application

    application = await get_application(store, application_id=before.application_id)
    if application is None:
        return True
    budgets = caps.budgets(
        application.risk.spend_caps,
        application_id=before.application_id,
        mode=Mode(before.mode),
        country=before.country,
        now=before.sent_at,
    )
    if budgets:
        await limiter.charge(
            budgets, cost=extra, member=f"{before.delivery_key}:price:{micros}", force=True
        )
    return True
