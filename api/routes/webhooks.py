"""/v1/webhooks: delivery receipts from providers, forwarded to verifications as signals.

No API key here: each request is authenticated by its provider's signature instead
(`X-Twilio-Signature`, `X-Hub-Signature-256`), checked before anything is read from it.
A receipt names its delivery by the delivery key the adapter handed the provider
(`ver_...:<run>:<seq>`: Twilio's `ref` callback parameter, Meta's
`biz_opaque_callback_data`), whose first part is the verification id.

Answers follow what the providers do with them: a signed receipt that cannot be used
(unparseable, no delivery key, the verification already finished) is still a success,
since a retry could not change anything; only a Temporal outage is a 5xx, so the
provider tries again later. Logs carry verification ids and provider message ids,
never destinations, bodies, tokens or signatures.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import PlainTextResponse
from temporalio.service import RPCError

from api.deps import get_client, get_settings
from api.errors import (
    InvalidWebhookSignature,
    PayloadTooLarge,
    WebhookNotConfigured,
    is_not_found,
)
from api.recording import record_receipt
from api.schemas import VERIFICATION_ID_RE, Problem, WebhookAck
from api.service import Timeouts
from otp.domain import DeliveryReceiptInput, verification_id_of_reference
from otp.observability import metrics
from providers.receipts import (
    META_SIGNATURE_HEADER,
    TWILIO_SIGNATURE_HEADER,
    DeliveryReceipt,
    meta_status_references,
    meta_subscription_challenge,
    parse_meta_statuses,
    parse_twilio_status,
    twilio_reference,
    verify_meta_signature,
    verify_twilio_signature,
)
from workflows.verification import VerificationWorkflow

logger = logging.getLogger("otp.api")

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

# Twilio's callbacks are a few hundred bytes; Meta batches statuses (its payloads stay
# well under a few MB). Anything larger is refused before it is read in full.
TWILIO_MAX_BODY = 64 * 1024
META_MAX_BODY = 4 * 1024 * 1024

# Bounds added to the RPC deadline for the overall wait (as in api.service).
_SLACK_S = 1.0


def _problems(described: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problems a webhook answers (its own descriptions)."""
    return {code: {"model": Problem, "description": text} for code, text in described.items()}


_SIGNED_PROBLEMS = {
    403: "Missing or invalid signature (nothing was forwarded)",
    404: "This provider's webhook is not configured",
    413: "Body too large",
}


# ----------------------------------------------------------------- shared steps
async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(limit)
    return bytes(body)


def _verification_id(reference: str | None) -> str | None:
    if not reference:
        return None
    vid = verification_id_of_reference(reference)
    return vid if vid is not None and VERIFICATION_ID_RE.match(vid) else None


async def _forward(request: Request, verification_id: str, receipt: DeliveryReceiptInput) -> bool:
    """Signal the receipt to its verification; False if that workflow is gone or closed.

    Either way the receipt goes to the event log (it often arrives after the approval).

    Temporal outages and timeouts escape to `api.errors` (503: the provider retries).
    """
    client = get_client(request)
    timeouts: Timeouts = request.app.state.timeouts
    t = timeouts.rpc
    handle = client.get_workflow_handle_for(VerificationWorkflow.run, verification_id)
    try:
        async with asyncio.timeout(t.total_seconds() + _SLACK_S):
            await handle.signal(VerificationWorkflow.delivery_receipt, receipt, rpc_timeout=t)
    except RPCError as err:
        if not is_not_found(err):
            raise
        await record_receipt(request, verification_id, receipt)
        return False
    await record_receipt(request, verification_id, receipt, signaled=True)
    return True


def _log_receipt(event: str, receipt: DeliveryReceiptInput, verification_id: str | None) -> None:
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


def _receipt(provider: str, parsed: DeliveryReceipt, reference: str | None) -> DeliveryReceiptInput:
    metrics.count_receipt(provider, parsed.status)  # every genuine, parsed receipt
    return DeliveryReceiptInput(
        provider=provider,
        provider_message_id=parsed.provider_message_id,
        status=parsed.status,
        error_code=parsed.error_code,
        reference=reference,
    )


# ----------------------------------------------------------------------- Twilio
def twilio_signed_url(request: Request, public_url: str | None) -> str:
    """The URL Twilio signed: the public base URL (behind proxies) + path + raw query."""
    if not public_url:
        return str(request.url)
    query = request.url.query
    return public_url.rstrip("/") + request.url.path + (f"?{query}" if query else "")


_TWILIO_FORM_SCHEMA = {
    "type": "object",
    "description": "Twilio's status callback parameters (more are sent and all are signed).",
    "properties": {
        "MessageSid": {"type": "string", "description": "Messages: the message SID."},
        "MessageStatus": {
            "type": "string",
            "description": "Messages: queued, sent, delivered, read, undelivered, failed, ...",
        },
        "ErrorCode": {"type": "string", "description": "Twilio error code of a failure."},
        "CallSid": {"type": "string", "description": "Calls: the call SID."},
        "CallStatus": {
            "type": "string",
            "description": "Calls: ringing, in-progress, completed, busy, no-answer, failed, ...",
        },
    },
}


@router.post(
    "/twilio/status",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Receive a Twilio status callback",
    responses={
        204: {"description": "Genuine callback: forwarded, or nothing left to do with it"},
        **_problems({**_SIGNED_PROBLEMS, 503: "Temporal unavailable (Twilio retries)"}),
    },
    openapi_extra={
        "parameters": [
            {
                "in": "query",
                "name": "ref",
                "required": False,
                "schema": {"type": "string"},
                "description": "The delivery key the Twilio adapter put in `StatusCallback`.",
            },
            {
                "in": "header",
                "name": TWILIO_SIGNATURE_HEADER,
                "required": True,
                "schema": {"type": "string"},
                "description": "Base64 HMAC-SHA1 of the URL Twilio called and the sorted "
                "form parameters, keyed with the auth token.",
            },
        ],
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": _TWILIO_FORM_SCHEMA}},
        },
    },
)
async def twilio_status(request: Request) -> Response:
    """Forward a message or call status to its verification (a failure falls back at once).

    Set this URL (with `?ref=<delivery key>`, added by the adapter) as `StatusCallback`.
    The signature is checked over `OTP_PUBLIC_URL` + path + query when that is set (the
    URL Twilio called, whatever proxies did to it), else over the request URL. Answers
    204 whenever the callback was genuine, even if it could not be used.
    """
    settings = get_settings(request)
    if settings.twilio_auth_token is None:
        raise WebhookNotConfigured("twilio")
    body = await _read_body(request, TWILIO_MAX_BODY)
    params = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    url = twilio_signed_url(request, settings.public_url)
    signature = request.headers.get(TWILIO_SIGNATURE_HEADER, "")
    if not verify_twilio_signature(
        settings.twilio_auth_token.get_secret_value(), url, params, signature
    ):
        logger.warning(
            "webhook refused: bad signature",
            extra={"provider": "twilio", "signed": bool(signature), "path": request.url.path},
        )
        raise InvalidWebhookSignature()

    parsed = parse_twilio_status(dict(params))
    reference = twilio_reference(url)
    verification_id = _verification_id(reference)
    if parsed is None or verification_id is None:
        logger.info(
            "twilio callback ignored",
            extra={
                "provider": "twilio",
                "reason": "no delivery status" if parsed is None else "no delivery key",
                "provider_message_id": parsed.provider_message_id if parsed else None,
            },
        )
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    receipt = _receipt("twilio", parsed, reference)
    if await _forward(request, verification_id, receipt):
        _log_receipt("delivery receipt forwarded", receipt, verification_id)
    else:
        _log_receipt("delivery receipt too late: verification finished", receipt, verification_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ------------------------------------------------------------------------- Meta
@router.get(
    "/meta",
    response_class=Response,  # errors stay documented as problem documents
    summary="Answer Meta's webhook subscription challenge",
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "The `hub.challenge` value.",
        },
        **_problems({403: "Wrong mode or verify token", 404: "The Meta webhook is not configured"}),
    },
)
async def meta_subscribe(
    request: Request,
    mode: Annotated[str | None, Query(alias="hub.mode", description="`subscribe`.")] = None,
    verify_token: Annotated[
        str | None,
        Query(alias="hub.verify_token", description="Must equal `OTP_META_VERIFY_TOKEN`."),
    ] = None,
    challenge: Annotated[
        str | None, Query(alias="hub.challenge", description="Echoed back on success.")
    ] = None,
) -> PlainTextResponse:
    """Meta's one-time check of the callback URL: echo `hub.challenge` if the token matches."""
    settings = get_settings(request)
    if settings.meta_verify_token is None:
        raise WebhookNotConfigured("meta")
    query = {
        name: value
        for name, value in (
            ("hub.mode", mode),
            ("hub.verify_token", verify_token),
            ("hub.challenge", challenge),
        )
        if value is not None
    }
    answer = meta_subscription_challenge(query, settings.meta_verify_token.get_secret_value())
    if answer is None:
        logger.warning(
            "webhook refused: bad subscription challenge",
            extra={"provider": "meta", "mode": mode if mode == "subscribe" else "other"},
        )
        raise InvalidWebhookSignature()
    logger.info("meta webhook subscription verified", extra={"provider": "meta"})
    return PlainTextResponse(answer, headers={"X-Content-Type-Options": "nosniff"})


@router.post(
    "/meta",
    response_model=WebhookAck,
    summary="Receive WhatsApp Cloud API message statuses",
    responses=_problems({**_SIGNED_PROBLEMS, 503: "Temporal unavailable (Meta retries)"}),
    openapi_extra={
        "parameters": [
            {
                "in": "header",
                "name": META_SIGNATURE_HEADER,
                "required": True,
                "schema": {"type": "string"},
                "description": "`sha256=` + hex HMAC-SHA256 of the raw body, keyed with the "
                "app secret.",
            }
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "description": "A `whatsapp_business_account` webhook; statuses in "
                        "`entry[].changes[].value.statuses[]` are read, the rest is ignored.",
                    }
                }
            },
        },
    },
)
async def meta_statuses(request: Request) -> WebhookAck:
    """Forward each message status to its verification (a `failed` one falls back at once).

    A status is mapped by its `biz_opaque_callback_data` (the delivery key the adapter
    sent with the message). Answers 200 once the delivery is genuine, even if some
    statuses could not be mapped, as Meta expects.
    """
    settings = get_settings(request)
    if settings.meta_app_secret is None:
        raise WebhookNotConfigured("meta")
    body = await _read_body(request, META_MAX_BODY)
    signature = request.headers.get(META_SIGNATURE_HEADER, "")
    if not verify_meta_signature(settings.meta_app_secret.get_secret_value(), body, signature):
        logger.warning(
            "webhook refused: bad signature",
            extra={"provider": "meta", "signed": bool(signature), "path": request.url.path},
        )
        raise InvalidWebhookSignature()
    try:
        payload = json.loads(body)
    except ValueError:
        logger.info("meta webhook ignored", extra={"provider": "meta", "reason": "not JSON"})
        return WebhookAck(statuses=0, forwarded=0)

    statuses = parse_meta_statuses(payload)
    references = meta_status_references(payload)
    forwarded = 0
    for parsed in statuses:
        reference = references.get(parsed.provider_message_id)
        receipt = _receipt("meta_whatsapp", parsed, reference)
        verification_id = _verification_id(reference)
        if verification_id is None:
            _log_receipt("meta status ignored: no delivery key", receipt, None)
            continue
        if await _forward(request, verification_id, receipt):
            forwarded += 1
            _log_receipt("delivery receipt forwarded", receipt, verification_id)
        else:
            _log_receipt(
                "delivery receipt too late: verification finished", receipt, verification_id
            )
    return WebhookAck(statuses=len(statuses), forwarded=forwarded)
