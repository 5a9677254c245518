"""Provider delivery receipts: which delivery a receipt is about, and what it changes.

A receipt names its delivery by the provider's message id or by the delivery's own key
(`reference`, echoed by providers that support one). It can overtake the send's own
result: then no delivery carries the message id yet, so ReceiptBuffer holds it and hands
it over when that result arrives.

Rules:
- A delivery that failed stays failed: later receipts for it change nothing.
- A receipt matched by reference teaches the delivery its provider message id.
- `failed` fails the delivery (its error code, or `receipt_failed`); `delivered` marks
  it delivered; any other status only updates it. A price the receipt carries is kept
  on the delivery's cost.
- At most MAX_BUFFERED receipts wait for their send; later unmatched ones are dropped
  (a receipt for an unknown delivery must not grow the workflow's state without bound).
- Deterministic and sandbox-safe: the standard library, temporalio and otp.domain only;
  the caller passes the time in.
"""

from __future__ import annotations

from datetime import datetime

from otp.domain import (
    DeliveryAttempt,
    DeliveryCost,
    DeliveryReceiptInput,
    DeliveryStatus,
    PriceSource,
)

MAX_BUFFERED = 32


def matches(attempt: DeliveryAttempt, receipt: DeliveryReceiptInput) -> bool:
    """Whether `receipt` is about `attempt` (same message id, or same delivery key)."""
    if attempt.provider_message_id and attempt.provider_message_id == receipt.provider_message_id:
        return True
    return bool(receipt.reference) and attempt.reference == receipt.reference


def apply(
    attempt: DeliveryAttempt, receipt: DeliveryReceiptInput, now: datetime
) -> DeliveryStatus | None:
    """Apply `receipt` to `attempt`; the receipt's status, or None when it was ignored."""
    if attempt.status is DeliveryStatus.FAILED:
        return None
    if not attempt.provider_message_id:
        # Matched by reference: the send's outcome was unknown until this receipt.
        attempt.provider_message_id = receipt.provider_message_id
    price(attempt, receipt)
    if receipt.status is DeliveryStatus.FAILED:
        attempt.status = DeliveryStatus.FAILED
        attempt.error_type = receipt.error_code or "receipt_failed"
    elif receipt.status is DeliveryStatus.DELIVERED:
        attempt.status = DeliveryStatus.DELIVERED
    attempt.updated_at = now
    return receipt.status


def price(attempt: DeliveryAttempt, receipt: DeliveryReceiptInput) -> None:
    """The provider's price a receipt carries, onto the delivery's cost (a cost not known
    yet takes it when the send's result arrives: see delivery.succeeded)."""
    if receipt.price_micros is None or not receipt.price_currency:
        return
    if attempt.cost is None:
        attempt.cost = DeliveryCost(
            currency=receipt.price_currency,
            estimate_micros=0,
            source=PriceSource.TABLE,
            reported_micros=receipt.price_micros,
            reported_currency=receipt.price_currency,
        )
        return
    attempt.cost.reported_micros = receipt.price_micros
    attempt.cost.reported_currency = receipt.price_currency


class ReceiptBuffer:
    """Receipts that arrived before the delivery they report on could be matched."""

    def __init__(self) -> None:
        self._held: list[DeliveryReceiptInput] = []

    def __len__(self) -> int:
        return len(self._held)

    def route(
        self, deliveries: list[DeliveryAttempt], receipt: DeliveryReceiptInput
    ) -> DeliveryAttempt | None:
        """The first delivery `receipt` is about; None (and the receipt held) if none is."""
        for attempt in deliveries:
            if matches(attempt, receipt):
                return attempt
        if len(self._held) < MAX_BUFFERED:
            self._held.append(receipt)
        return None

    def take(self, attempt: DeliveryAttempt) -> DeliveryReceiptInput | None:
        """The first held receipt about `attempt` (no longer held), if any."""
        for position, receipt in enumerate(self._held):
            if matches(attempt, receipt):
                return self._held.pop(position)
        return None
