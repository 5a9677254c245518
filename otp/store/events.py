"""The event log: every state change of a verification, written idempotently to the store.

Three writers note the same changes, each as early as it can, under the same keys:
- the API (created, a wrong check, a provider's delivery receipt),
- the delivery activity (send attempted, sent, failed),
- the workflow's final batch (everything, with the terminal status), which makes the
  log complete even when an earlier write was lost to a crash.
A key already in the log is skipped, so the log holds each change once. A change that
is new and that applications subscribe to (created, delivered and the terminal
states) is handed to the webhook dispatcher; `webhooks_dispatched` remembers that it
was, so the final batch hands over whatever an earlier writer could not.

Never a code; destinations only masked and as a keyed hash.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from otp.domain import (
    WEBHOOK_EVENT_OF,
    Channel,
    ChannelStep,
    DeliveryReceiptInput,
    DeliveryStatus,
    EventType,
    LogEntry,
    Mode,
    Status,
    VerificationState,
    WebhookEvent,
    webhook_message_id,
)
from otp.domain.destinations import mask, number_prefix, range_hash
from otp.store import Store, VerificationEvent, VerificationRecord, utcnow
from otp.store import records as store_records

logger = logging.getLogger("otp.store.events")

_DESTINATION_LABEL = b"otp/destination/v1"

Dispatch = Callable[[WebhookEvent], Awaitable[int]]
# How long "this application has (no) webhook endpoints" is trusted: an endpoint added
# now receives events from a few seconds later on.
ENDPOINTS_CACHE_S = 5.0


def destination_hash(code_secret: bytes, destination: str) -> str:
    """Keyed hash of a normalised destination (E.164 or lower-cased email), hex."""
    normalized = destination.strip()
    if "@" in normalized:
        normalized = normalized.lower()
    return hmac.new(
        code_secret, _DESTINATION_LABEL + b"|" + normalized.encode(), hashlib.sha256
    ).hexdigest()


@dataclass
class Verification:
    """What the recorder needs to know about a verification to write its events."""

    id: str
    application_id: str
    mode: Mode
    country: str | None
    destinations: dict[int, tuple[Channel, str]]  # by plan step index
    client_ref: str | None = None

    def destination(self, step_index: int | None) -> str | None:
        found = self.destinations.get(step_index) if step_index is not None else None
        return found[1] if found else None


@dataclass
class EventRecorder:
    """Writes events and records; hands new subscribed events to the webhook dispatcher."""

    store: Store
    code_secret: bytes
    dispatch: Dispatch | None = None
    _endpoints_cache: dict[tuple[str, str], tuple[bool, float]] = field(default_factory=dict)

    def event_row(
        self,
        verification: Verification,
        entry: LogEntry,
    ) -> dict[str, Any]:
        """The event's columns (a dict: building model objects costs more than the write)."""
        to = verification.destination(entry.step_index)
        return dict(
            verification_id=verification.id,
            key=entry.key,
            application_id=verification.application_id,
            mode=verification.mode.value,
            type=entry.type.value,
            occurred_at=entry.occurred_at,
            channel=entry.channel.value if entry.channel else None,
            provider=entry.provider,
            provider_message_id=entry.provider_message_id,
            country=verification.country,
            to_masked=mask(to) if to else None,
            destination_hash=destination_hash(self.code_secret, to) if to else None,
            step_index=entry.step_index,
            reason=entry.reason,
            webhooks_dispatched=False,
            template_version=entry.template_version,
        )

    async def record(
        self,
        verification: Verification,
        entries: Sequence[LogEntry],
        *,
        data: dict[str, Any] | None = None,
        dispatch: bool = True,
    ) -> tuple[int, int]:
        """Write entries (skipping known keys), then hand subscribed events not yet handed
        over to the webhook dispatcher. Returns (events written, webhooks started).

        `data` is the verification as webhooks show it; None reads it from the store.
        """
        rows = await self._rows(verification, entries, dispatch=dispatch)
        written = await store_records.insert_events(self.store, events=rows)
        return written, await self._after_write(verification, rows, data, dispatch=dispatch)

    async def _rows(
        self, verification: Verification, entries: Sequence[LogEntry], *, dispatch: bool
    ) -> list[dict[str, Any]]:
        rows = [self.event_row(verification, entry) for entry in entries]
        if dispatch and not await self._has_endpoints(verification):
            for row in rows:  # nobody to tell: nothing will ever be due for these
                row["webhooks_dispatched"] = True
        return rows

    async def _has_endpoints(self, verification: Verification) -> bool:
        """Cached for a few seconds: the hot path does not ask on every event."""
        if self.dispatch is None:
            return False
        scope = (verification.application_id, verification.mode.value)
        now = time.monotonic()
        cached = self._endpoints_cache.get(scope)
        if cached is not None and now - cached[1] < ENDPOINTS_CACHE_S:
            return cached[0]
        found = await store_records.has_webhook_endpoints(
            self.store, application_id=scope[0], mode=scope[1]
        )
        self._endpoints_cache[scope] = (found, now)
        return found

    async def _after_write(
        self,
        verification: Verification,
        rows: Sequence[dict[str, Any]],
        data: dict[str, Any] | None,
        *,
        dispatch: bool,
    ) -> int:
        if not dispatch or all(row["webhooks_dispatched"] for row in rows):
            return 0
        started = 0
        if self.dispatch is not None:
            if data is None:
                record = await store_records.get_record(
                    self.store,
                    verification_id=verification.id,
                    application_id=verification.application_id,
                    mode=verification.mode.value,
                )
                data = public_data(record.model_dump()) if record else {"id": verification.id}
            started = await self._dispatch_pending(verification, data=data)
        return started

    async def _dispatch_pending(self, verification: Verification, *, data: dict[str, Any]) -> int:
        if self.dispatch is None:
            return 0
        pending = await store_records.undispatched_events(
            self.store, verification_id=verification.id
        )
        started = 0
        for event in pending:
            webhook_type = WEBHOOK_EVENT_OF.get(EventType(event.type))
            if webhook_type is not None:
                started += await self.dispatch(
                    WebhookEvent(
                        id=webhook_message_id(verification.id, event.key),
                        type=webhook_type,
                        application_id=verification.application_id,
                        mode=verification.mode,
                        occurred_at=event.occurred_at,
                        verification_id=verification.id,
                        data=_webhook_data(data, event),
                    )
                )
            await store_records.mark_dispatched(self.store, event_id=event.id)
        return started

    async def record_receipt(
        self, verification_id: str, receipt: DeliveryReceiptInput, *, signaled: bool = False
    ) -> bool:
        """A provider's receipt, logged whether or not the workflow still runs (receipts
        often arrive after the code was already verified). False: not logged now (no
        record row, a receipt naming no known delivery, or `signaled` — the running
        workflow got it and its final batch will log it — with no webhook endpoint
        waiting for a `verification.delivered`)."""
        if receipt.status not in (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED):
            return False
        async with self.store.session() as session:
            record = await session.get(VerificationRecord, verification_id)
        if record is None:
            return False
        verification = Verification(
            id=verification_id,
            application_id=record.application_id,
            mode=Mode(record.mode),
            country=record.country,
            destinations={},
        )
        if signaled and not await self._has_endpoints(verification):
            return False
        reference = receipt.reference
        sent = None
        if receipt.provider_message_id:
            sent = await store_records.find_delivery_event(
                self.store,
                verification_id=verification_id,
                provider_message_id=receipt.provider_message_id,
            )
        if not reference and sent is not None:
            reference = sent.key.split(":", 1)[1]
        if not reference:
            return False
        delivered = receipt.status is DeliveryStatus.DELIVERED
        now = utcnow()
        entry = LogEntry(
            key=f"{'delivered' if delivered else 'failed'}:{reference}",
            type=EventType.DELIVERED if delivered else EventType.FAILED,
            occurred_at=now,
            channel=Channel(sent.channel) if sent and sent.channel else None,
            provider=receipt.provider,
            provider_message_id=receipt.provider_message_id or None,
            step_index=sent.step_index if sent else None,
            reason=None if delivered else (receipt.error_code or "receipt_failed"),
        )
        if delivered:
            await store_records.mark_delivered(self.store, verification_id=verification_id, at=now)
            record.delivered, record.delivered_at = True, now
        await self.record(verification, [entry], data=public_data(record.model_dump()))
        return True

    async def record_state(
        self,
        verification_id: str,
        state: VerificationState,
        entries: Sequence[LogEntry],
        *,
        country: str | None,
        final: bool,
    ) -> tuple[int, int]:
        """The workflow's batch: the record row from its state, then every entry."""
        verification = verification_of_state(verification_id, state, country=country)
        record = record_of_state(verification, state, entries, self.code_secret, final=final)
        rows = await self._rows(verification, entries, dispatch=True)
        written = await store_records.upsert_record(
            self.store,
            record=record,
            destination_hashes=_destination_hashes(verification, self.code_secret),
            events=rows,
        )
        started = await self._after_write(verification, rows, public_data(record), dispatch=True)
        return written, started


def verification_of_state(
    verification_id: str, state: VerificationState, *, country: str | None
) -> Verification:
    return Verification(
        id=verification_id,
        application_id=state.application_id,
        mode=state.mode,
        country=country,
        destinations={i: (step.channel, step.to) for i, step in enumerate(state.channels)},
        client_ref=state.client_ref,
    )


def _destination_hashes(verification: Verification, code_secret: bytes) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for channel, to in verification.destinations.values():
        seen.setdefault(destination_hash(code_secret, to), channel.value)
    return list(seen.items())


def _ms(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return max(0, int((end - start).total_seconds() * 1000))


def record_of_state(
    verification: Verification,
    state: VerificationState,
    entries: Sequence[LogEntry],
    code_secret: bytes,
    *,
    final: bool,
) -> dict[str, Any]:
    plan = state.channels
    current = plan[min(state.current_step, len(plan) - 1)] if plan else None
    delivered = [d for d in state.deliveries if d.status is DeliveryStatus.DELIVERED]
    delivered_at = min((d.updated_at for d in delivered), default=None)
    approved = state.status is Status.APPROVED
    # A dict of columns: building a validated model costs more than writing it.
    return dict(
        updated_at=utcnow(),
        id=verification.id,
        application_id=state.application_id,
        mode=state.mode.value,
        status=state.status.value,
        reason=state.reason,
        first_channel=plan[0].channel.value if plan else "",
        channel=current.channel.value if current else "",
        channels=[step.channel.value for step in plan],
        country=verification.country,
        to_masked=mask(plan[0].to) if plan else "",
        prefix_hash=_prefix_hash(plan, code_secret),
        client_ref=state.client_ref,
        created_at=state.created_at,
        expires_at=state.expires_at,
        finished_at=state.finished_at,
        attempts_used=state.attempts_used,
        max_attempts=state.max_attempts,
        sends=state.sends,
        wrong_checks=state.attempts_used - (1 if approved else 0),
        fallbacks=sum(1 for e in entries if e.type is EventType.FALLBACK),
        delivered=bool(delivered),
        delivered_at=delivered_at,
        time_to_verify_ms=_ms(state.created_at, state.finished_at) if approved else None,
        time_to_deliver_ms=_ms(state.created_at, delivered_at),
        final=final,
        snapshot=masked_snapshot(state),
    )


def _prefix_hash(plan: Sequence[ChannelStep], code_secret: bytes) -> str | None:
    """The range hash of the plan's first phone destination (conversion monitoring)."""
    prefix = next((number_prefix(step.to) for step in plan if step.channel.is_phone), None)
    return range_hash(code_secret, prefix) if prefix else None


def masked_snapshot(state: VerificationState) -> dict[str, Any]:
    """The state as JSON with every destination masked."""
    snapshot = state.model_dump(mode="json")
    for step in snapshot.get("channels", []):
        step["to"] = mask(step.get("to") or "")
    return snapshot


def public_data(record: Mapping[str, Any]) -> dict[str, Any]:
    """The verification as webhooks show it: no code, the destination masked."""
    return {
        "id": record["id"],
        "status": record["status"],
        "reason": record["reason"],
        "channel": record["channel"],
        "channels": list(record["channels"]),
        "country": record["country"],
        "to": record["to_masked"],
        "client_ref": record["client_ref"],
        "created_at": record["created_at"].isoformat(),
        "expires_at": record["expires_at"].isoformat(),
        "finished_at": record["finished_at"].isoformat() if record["finished_at"] else None,
        "attempts_used": record["attempts_used"],
        "sends": record["sends"],
    }


def _webhook_data(base: dict[str, Any], event: VerificationEvent) -> dict[str, Any]:
    data = dict(base)
    data["event"] = {
        "type": event.type,
        "occurred_at": event.occurred_at.isoformat(),
        "channel": event.channel,
        "provider": event.provider,
        "reason": event.reason,
    }
    if event.type == EventType.DELIVERED.value and event.channel:
        data["channel"] = event.channel
    return data
