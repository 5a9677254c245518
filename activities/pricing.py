"""What a delivery costs, checked before its provider call: the verification's own cost
cap, then the application's spend caps; and the costs the store keeps.

Rules:
- The estimate is the price book's quote for the provider about to send, counted in the
  channel's unit (SMS segments of the rendered message, one message, one call minute).
- Cost cap: a send whose estimate would take the verification's cost (its deliveries so
  far, a provider's price where one came back) past `cost_cap_micros` is not made:
  `CostCapReached`, non-retryable. The workflow then tries the step's next provider or
  skips the step (a resend's update fails and the verification is unchanged).
- Spend caps: the estimate is charged to each cap's budget (day, month, country per day)
  all or nothing, with the delivery's limit member so a retried activity charges once. A
  cap with no room refuses the send with nothing charged: `Blocked` with the cap's name,
  its amounts and when it has room again. The API charged a run's very first send at
  create; that send charges only what its own estimate adds (forced: the create was
  admitted).
- Free sends (the sandbox, a provider without a price) charge nothing.
- A store or limiter that fails: the send goes out (logged), as for the risk gate.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime

from temporalio.exceptions import ApplicationError

from otp.cost import caps
from otp.cost.book import PriceBook
from otp.cost.money import format_money
from otp.cost.price_table import Quote
from otp.domain import DeliverInput, ErrorType
from otp.domain.destinations import country_of
from otp.risk.conversion_monitor import DeliveryGate
from otp.risk.limits import Limiter
from otp.store import Store
from otp.store.costs import CostEntry, record_costs

logger = logging.getLogger("otp.activities")


def cost_cap_error(input: DeliverInput, quote: Quote) -> ApplicationError | None:
    """The refusal of a send that would pass the verification's cost cap, or None."""
    cap = input.cost_cap_micros
    if cap is None or input.cost_so_far_micros + quote.micros <= cap:
        return None
    reason = (
        f"cost cap: {format_money(input.cost_so_far_micros, quote.currency)} so far + "
        f"{quote.describe()} > {format_money(cap, quote.currency)}"
    )
    return ApplicationError(
        "the send would pass the verification's cost cap",
        {"reason": reason, "code": "cost_cap"},
        type=ErrorType.COST_CAP,
        non_retryable=True,
    )


class DeliveryPricing:
    """Quotes, cost caps and spend caps of deliveries, and their cost records."""

    def __init__(
        self,
        book: PriceBook,
        *,
        store: Store | None,
        limiter: Limiter | None,
        gate: DeliveryGate | None,
    ) -> None:
        self.book = book
        self._store = store
        self._limiter = limiter
        self._gate = gate

    async def quote(self, input: DeliverInput, provider: str, *, segments: int) -> Quote:
        return await self.book.quote(
            input.application_id, provider, input.channel, input.to, segments=segments
        )

    async def admit(
        self, input: DeliverInput, quote: Quote, *, member: str, log_extra: Mapping[str, object]
    ) -> None:
        """Raise unless the send fits the cost cap and the spend caps (charged here)."""
        error = cost_cap_error(input, quote)
        if error is not None:
            logger.warning("delivery refused by the cost cap", extra=dict(log_extra))
            raise error
        if self._limiter is None or self._gate is None or quote.micros <= 0:
            return
        precharged = input.precharged_micros if input.precounted else 0
        extra = quote.micros - precharged
        if extra <= 0:
            return
        country = country_of(input.to) if input.channel.is_phone else None
        try:
            risk = await self._gate.risk_settings(input.application_id)
            spend = caps.SpendCharge(
                caps.budgets(
                    risk.spend_caps,
                    application_id=input.application_id,
                    mode=input.mode,
                    country=country,
                    now=datetime.now(UTC),
                ),
                extra,
                quote.currency,
                country,
            )
            if input.precounted:
                # The create was admitted with its estimate: what rendering added counts.
                if spend.budgets:
                    await self._limiter.charge(
                        spend.budgets, cost=extra, member=member + ":extra", force=True
                    )
                return
            refusal = await caps.charge(self._limiter, spend, member=member)
        except Exception:
            logger.warning("spend caps unavailable; sending anyway", extra=dict(log_extra))
            return
        if refusal is None:
            return
        await caps.note_refusal(
            self._limiter, refusal, application_id=input.application_id, mode=input.mode
        )
        logger.warning(
            "delivery refused at a spend cap", extra={**log_extra, "refusal": refusal.cap}
        )
        raise ApplicationError(
            "refused at a spend cap",
            {
                "reason": refusal.reason(),
                "code": f"{refusal.cap}_limit",
                "limit": refusal.cap,
                "retry_after_s": refusal.retry_after_s,
            },
            type=ErrorType.BLOCKED,
            non_retryable=True,
        )

    async def record(self, entries: list[CostEntry]) -> None:
        if self._store is not None and entries:
            await record_costs(self._store, entries)


def cost_entry(
    input: DeliverInput, key: str, provider: str, message_id: str | None, quote: Quote
) -> CostEntry:
    return CostEntry(
        delivery_key=key,
        verification_id=input.verification_id,
        application_id=input.application_id,
        mode=input.mode.value,
        provider=provider,
        channel=input.channel.value,
        sent_at=datetime.now(UTC),
        cost=quote.cost(),
        provider_message_id=message_id or None,
        country=country_of(input.to) if input.channel.is_phone else None,
        kind=input.kind.value,
        step_index=input.step_index,
    )
