"""EventLog: the state changes a verification notes for its event log, in order.

The workflow writes them in one batch when the run ends (RecordVerificationInput).

Rules:
- Each entry's `key` names the change within its verification (`created`,
  `send:<delivery key>`, `sent:...`, `failed:...`, `delivered:...`, `fallback:<step>`,
  `check:<n>`, `terminal`): the API and the delivery activity, which record some of the
  same changes earlier, use the same keys, so the log holds each change once.
- No destination, code or message text: the recorder resolves destinations from the
  step index, masks and hashes them.
- Deterministic and sandbox-safe: the standard library, temporalio and otp.domain only;
  the caller passes the time in.
"""

from __future__ import annotations

from datetime import datetime

from otp.domain import (
    TERMINAL_EVENT_OF,
    Channel,
    DeliveryAttempt,
    DeliveryStatus,
    EventType,
    LogEntry,
    Status,
)
from otp.domain.routing import send_reason


class EventLog:
    """The entries noted so far, oldest first."""

    def __init__(self, created: datetime, channel: Channel | None) -> None:
        self.entries: list[LogEntry] = [
            LogEntry(
                key="created",
                type=EventType.CREATED,
                occurred_at=created,
                channel=channel,
                step_index=0,
            )
        ]

    def _note(self, type: EventType, key: str, now: datetime, **fields: object) -> None:
        self.entries.append(LogEntry(key=key, type=type, occurred_at=now, **fields))

    def send_attempted(self, attempt: DeliveryAttempt, now: datetime) -> None:
        """A provider's try at a delivery starts (`reason`: step or resend)."""
        self._note(
            EventType.SEND_ATTEMPTED,
            f"send:{attempt.reference}",
            now,
            channel=attempt.channel,
            provider=attempt.provider,
            step_index=attempt.step_index,
            reason=send_reason(attempt.kind.value, attempt.rule_id, attempt.sender),
        )

    def sent(self, attempt: DeliveryAttempt, now: datetime) -> None:
        """The provider accepted the message."""
        self._note(
            EventType.SENT,
            f"sent:{attempt.reference}",
            now,
            channel=attempt.channel,
            provider=attempt.provider,
            provider_message_id=attempt.provider_message_id or None,
            step_index=attempt.step_index,
            template_version=attempt.template_version,
        )

    def send_failed(self, attempt: DeliveryAttempt, now: datetime) -> None:
        """The try failed (its activity's failure type as the reason)."""
        self._note(
            EventType.FAILED,
            f"failed:{attempt.reference}",
            now,
            channel=attempt.channel,
            provider=attempt.provider,
            step_index=attempt.step_index,
            reason=attempt.error_type,
        )

    def receipt(self, attempt: DeliveryAttempt, status: DeliveryStatus, now: datetime) -> None:
        """A receipt applied to `attempt`: `failed` and `delivered` are noted, nothing else."""
        if status is DeliveryStatus.FAILED:
            self._note(
                EventType.FAILED,
                f"failed:{attempt.reference}",
                now,
                channel=attempt.channel,
                provider=attempt.provider,
                provider_message_id=attempt.provider_message_id,
                step_index=attempt.step_index,
                reason=attempt.error_type,
            )
        elif status is DeliveryStatus.DELIVERED:
            self._note(
                EventType.DELIVERED,
                f"delivered:{attempt.reference}",
                now,
                channel=attempt.channel,
                provider=attempt.provider,
                provider_message_id=attempt.provider_message_id,
                step_index=attempt.step_index,
            )

    def fallback(self, index: int, channel: Channel, reason: str, now: datetime) -> None:
        """The plan moved on to step `index`."""
        self._note(
            EventType.FALLBACK,
            f"fallback:{index}",
            now,
            channel=channel,
            step_index=index,
            reason=reason,
        )

    def check_failed(self, number: int, now: datetime) -> None:
        """Check number `number` submitted an incorrect code."""
        self._note(EventType.CHECK_FAILED, f"check:{number}", now, reason="incorrect code")

    def terminal(
        self, status: Status, index: int, channel: Channel | None, reason: str, now: datetime
    ) -> None:
        """The verification ended with `status` on step `index`."""
        self._note(
            TERMINAL_EVENT_OF[status],
            "terminal",
            now,
            channel=channel,
            step_index=index,
            reason=reason,
        )
