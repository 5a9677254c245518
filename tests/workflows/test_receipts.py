"""Receipt matching, application and buffering, without a Temporal server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from otp.domain import Channel, DeliveryAttempt, DeliveryReceiptInput, DeliveryStatus
from workflows import receipts
from workflows.receipts import MAX_BUFFERED, ReceiptBuffer

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LATER = T0 + timedelta(seconds=5)


def attempt(
    message_id: str | None = "msg-1",
    reference: str | None = "ver_1:run:1",
    status: DeliveryStatus = DeliveryStatus.SENT,
) -> DeliveryAttempt:
    return DeliveryAttempt(
        step_index=0,
        channel=Channel.SMS,
        provider="twilio",
        provider_message_id=message_id,
        reference=reference,
        status=status,
        started_at=T0,
        updated_at=T0,
    )


def receipt(
    status: DeliveryStatus = DeliveryStatus.DELIVERED,
    message_id: str = "msg-1",
    reference: str | None = None,
    error_code: str | None = None,
) -> DeliveryReceiptInput:
    return DeliveryReceiptInput(
        provider="twilio",
        provider_message_id=message_id,
        status=status,
        reference=reference,
        error_code=error_code,
    )


def test_a_receipt_matches_by_message_id_or_by_delivery_key() -> None:
    assert receipts.matches(attempt(), receipt())
    assert receipts.matches(
        attempt(message_id=None), receipt(message_id="x", reference="ver_1:run:1")
    )
    assert not receipts.matches(attempt(), receipt(message_id="other"))
    assert not receipts.matches(attempt(message_id=None), receipt(message_id=""))
    # An empty message id or no reference never matches by accident.
    assert not receipts.matches(attempt(message_id="", reference=None), receipt(message_id=""))


def test_failed_fails_the_delivery_with_its_error_code() -> None:
    sent = attempt()
    applied = receipts.apply(sent, receipt(DeliveryStatus.FAILED, error_code="30003"), LATER)
    assert applied is DeliveryStatus.FAILED
    assert (sent.status, sent.error_type, sent.updated_at) == (
        DeliveryStatus.FAILED,
        "30003",
        LATER,
    )
    other = attempt()
    receipts.apply(other, receipt(DeliveryStatus.FAILED), LATER)
    assert other.error_type == "receipt_failed"


def test_delivered_marks_the_delivery_delivered() -> None:
    sent = attempt()
    assert (
        receipts.apply(sent, receipt(DeliveryStatus.DELIVERED), LATER) is DeliveryStatus.DELIVERED
    )
    assert sent.status is DeliveryStatus.DELIVERED and sent.updated_at == LATER


def test_a_failed_delivery_stays_failed() -> None:
    failed = attempt(status=DeliveryStatus.FAILED)
    assert receipts.apply(failed, receipt(DeliveryStatus.DELIVERED), LATER) is None
    assert failed.status is DeliveryStatus.FAILED and failed.updated_at == T0


def test_another_status_only_updates_the_delivery() -> None:
    sending = attempt(status=DeliveryStatus.SENDING)
    assert receipts.apply(sending, receipt(DeliveryStatus.SENT), LATER) is DeliveryStatus.SENT
    assert sending.status is DeliveryStatus.SENDING and sending.updated_at == LATER


def test_a_receipt_matched_by_key_teaches_the_message_id_but_never_replaces_one() -> None:
    unknown = attempt(message_id=None)
    receipts.apply(unknown, receipt(message_id="msg-9", reference="ver_1:run:1"), LATER)
    assert unknown.provider_message_id == "msg-9"
    known = attempt(message_id="msg-1")
    receipts.apply(known, receipt(message_id="msg-9", reference="ver_1:run:1"), LATER)
    assert known.provider_message_id == "msg-1"


def test_a_receipt_for_a_known_delivery_is_routed_to_the_first_match_and_not_held() -> None:
    buffer = ReceiptBuffer()
    first, second = attempt(reference="ver_1:run:1"), attempt(reference="ver_1:run:2")
    assert buffer.route([first, second], receipt()) is first
    assert len(buffer) == 0


def test_a_receipt_before_its_send_is_held_until_the_send_result_arrives() -> None:
    buffer = ReceiptBuffer()
    early = receipt(DeliveryStatus.FAILED, message_id="msg-7")
    assert buffer.route([attempt()], early) is None
    assert len(buffer) == 1
    assert buffer.take(attempt(message_id="msg-other", reference="ver_1:run:5")) is None
    assert buffer.take(attempt(message_id="msg-7")) is early
    assert len(buffer) == 0
    assert buffer.take(attempt(message_id="msg-7")) is None  # handed over once


def test_a_receipt_for_an_unknown_delivery_is_held_within_a_bound() -> None:
    buffer = ReceiptBuffer()
    for n in range(MAX_BUFFERED + 5):
        assert buffer.route([], receipt(message_id=f"unknown-{n}")) is None
    assert len(buffer) == MAX_BUFFERED
    assert buffer.take(attempt(message_id=f"unknown-{MAX_BUFFERED - 1}")) is not None
    assert buffer.take(attempt(message_id=f"unknown-{MAX_BUFFERED}")) is None  # dropped
