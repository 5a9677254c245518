"""Provider delivery receipts, forwarded to their verifications as signals.

Each receipt is authenticated by its provider's signature before anything is read from
it. A receipt names its delivery by the delivery key the adapter handed the provider
(`ver_...:<run>:<seq>`: Twilio's `ref` callback parameter, Meta's
`biz_opaque_callback_data`), whose first part is the verification id. A signed receipt
that cannot be used (unparseable, no delivery key, the verification already finished)
is not an error: a retry could not change anything. Logs carry verification ids and
provider message ids, never destinations, bodies, tokens or signatures.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import SecretStr

from api.problems import InvalidWebhookSignature, WebhookNotConfigured
from api.schemas.verifications import VERIFICATION_ID_RE
from api.services import events
from api.services.verification_workflows import VerificationService
from otp.cost.reported import apply_reported_price
from otp.domain import DeliveryReceiptInput, verification_id_of_reference
from otp.observability import metrics
from otp.receipts.meta import (
    meta_status_references,
    meta_subscription_challenge,
    parse_meta_statuses,
    verify_meta_signature,
)
from otp.receipts.receipt import DeliveryReceipt
from otp.receipts.twilio import parse_twilio_status, twilio_reference, verify_twilio_signature
from otp.risk.limits import Limiter
from otp.store import Store
from otp.store.events import EventRecorder

logger = logging.getLogger("otp.api")


@dataclass(frozen=True)
class Receipt:
    """A genuine, parsed receipt and the verification it names (None: no delivery key)."""

    input: DeliveryReceiptInput
    verification_id: str | None


def configured(provider: str, credential: SecretStr | None) -> str:
    """The provider's webhook credential; 404 problem when it is not configured."""
    if credential is None:
        raise WebhookNotConfigured(provider)
    return credential.get_secret_value()


def verification_id_of(reference: str | None) -> str | None:
    if not reference:
        return None
    vid = verification_id_of_reference(reference)
    return vid if vid is not None and VERIFICATION_ID_RE.match(vid) else None


def _receipt(provider: str, parsed: DeliveryReceipt, reference: str | None) -> Receipt:
    metrics.count_receipt(provider, parsed.status)  # every genuine, parsed receipt
    receipt = DeliveryReceiptInput(
        provider=provider,
        provider_message_id=parsed.provider_message_id,
        status=parsed.status,
        error_code=parsed.error_code,
        reference=reference,
        price_micros=parsed.price_micros,
        price_currency=parsed.price_currency,
    )
    return Receipt(receipt, verification_id_of(reference))


def _refuse(provider: str, signature: str, path: str) -> InvalidWebhookSignature:
    logger.warning(
        "webhook refused: bad signature",
        extra={"provider": provider, "signed": bool(signature), "path": path},
    )
    return InvalidWebhookSignature()


def twilio_receipt(
    auth_token: str, *, url: str, params: list[tuple[str, str]], signature: str, path: str
) -> Receipt | None:
    """The receipt of a Twilio status callback signed over `url`; None when it carries no
    delivery status or no delivery key. 403 problem for a bad signature."""
    if not verify_twilio_signature(auth_token, url, params, signature):
        raise _refuse("twilio", signature, path)
    parsed = parse_twilio_status(dict(params))
    reference = twilio_reference(url)
    if parsed is None or verification_id_of(reference) is None:
        logger.info(
            "twilio callback ignored",
            extra={
                "provider": "twilio",
                "reason": "no delivery status" if parsed is None else "no delivery key",
                "provider_message_id": parsed.provider_message_id if parsed else None,
            },
        )
        return None
    return _receipt("twilio", parsed, reference)


def meta_receipts(app_secret: str, *, body: bytes, signature: str, path: str) -> list[Receipt]:
    """The receipts of a WhatsApp Cloud API webhook. 403 problem for a bad signature."""
    if not verify_meta_signature(app_secret, body, signature):
        raise _refuse("meta", signature, path)
    try:
        payload = json.loads(body)
    except ValueError:
        logger.info("meta webhook ignored", extra={"provider": "meta", "reason": "not JSON"})
        return []
    references = meta_status_references(payload)
    return [
        _receipt("meta_whatsapp", parsed, references.get(parsed.provider_message_id))
        for parsed in parse_meta_statuses(payload)
    ]


def meta_challenge(
    verify_token: str, *, mode: str | None, token: str | None, challenge: str | None
) -> str:
    """Meta's subscription check: the challenge to echo. 403 problem when it fails."""
    query = {
        name: value
        for name, value in (
            ("hub.mode", mode),
            ("hub.verify_token", token),
            ("hub.challenge", challenge),
        )
        if value is not None
    }
    answer = meta_subscription_challenge(query, verify_token)
    if answer is None:
        logger.warning(
            "webhook refused: bad subscription challenge",
            extra={"provider": "meta", "mode": mode if mode == "subscribe" else "other"},
        )
        raise InvalidWebhookSignature()
    logger.info("meta webhook subscription verified", extra={"provider": "meta"})
    return answer


def _log(event: str, receipt: DeliveryReceiptInput, verification_id: str | None) -> None:
    logger.info(
        event,
        extra={
            "verification_id": verification_id,
            "provider": receipt.provider,
            "provider_message_id": receipt.provider_message_id,
            "delivery_status": receipt.status.value,
            "error_code": receipt.error_code,
        },
    )


async def forward(
    workflows: VerificationService,
    recorder: EventRecorder | None,
    receipts: Sequence[Receipt],
    *,
    ignored: str = "meta status ignored: no delivery key",
    store: Store | None = None,
    limiter: Limiter | None = None,
) -> int:
    """Signal each receipt to its verification; how many reached a running one.

    Every receipt with a verification goes to the event log too (it often arrives after
    the approval), and a price it carries to the delivery's cost (with the `store`; the
    spend caps count a price above the estimate with the `limiter`). Temporal outages and
    timeouts escape (503: the provider retries).
    """
    forwarded = 0
    for receipt in receipts:
        if receipt.verification_id is None:
            _log(ignored, receipt.input, None)
            continue
        signaled = await workflows.signal_receipt(receipt.verification_id, receipt.input)
        await _record_price(store, limiter, receipt.input)
        await events.record_receipt(
            recorder, receipt.verification_id, receipt.input, signaled=signaled
        )
        if signaled:
            forwarded += 1
            _log("delivery receipt forwarded", receipt.input, receipt.verification_id)
        else:
            _log(
                "delivery receipt too late: verification finished",
                receipt.input,
                receipt.verification_id,
            )
    return forwarded


async def _record_price(
    store: Store | None, limiter: Limiter | None, receipt: DeliveryReceiptInput
) -> None:
    if store is None or receipt.price_micros is None or not receipt.price_currency:
        return
    try:
        await apply_reported_price(
            store,
            limiter,
            provider=receipt.provider,
            micros=receipt.price_micros,
            currency=receipt.price_currency,
            delivery_key=receipt.reference,
            provider_message_id=receipt.provider_message_id,
        )
    except Exception:  # the receipt still counts; a later fetch can bring the price again
        logger.warning("provider price not recorded", extra={"provider": receipt.provider})
