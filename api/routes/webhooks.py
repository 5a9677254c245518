"""/v1/webhooks: delivery receipts from providers, forwarded to verifications as signals.

No API key here: each request is authenticated by its provider's signature instead
(`X-Twilio-Signature`, `X-Hub-Signature-256`), checked before anything is read from it
(`api.services.receipts`). Answers follow what the providers do with them: a signed
receipt that cannot be used is still a success, since a retry could not change
anything; only a Temporal outage is a 5xx, so the provider tries again later.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import PlainTextResponse
from pydantic import SecretStr

from api.deps import (
    get_limiter,
    get_recorder,
    get_secrets,
    get_settings,
    get_store,
    verification_service,
)
from api.problems import PayloadTooLarge
from api.schemas.problem import problem_responses
from api.schemas.receipts import WebhookAck
from api.services import provider_accounts, receipts
from otp.applications.provider_accounts import ACCOUNT_QUERY_PARAMETER
from otp.receipts.meta import META_SIGNATURE_HEADER
from otp.receipts.twilio import TWILIO_SIGNATURE_HEADER

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

# Twilio's callbacks are a few hundred bytes; Meta batches statuses (its payloads stay
# well under a few MB). Anything larger is refused before it is read in full.
TWILIO_MAX_BODY = 64 * 1024
META_MAX_BODY = 4 * 1024 * 1024


def _problems(described: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problems a webhook answers (its own descriptions)."""
    return problem_responses(*described, described=described)


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


async def _credential(
    request: Request, provider: str, field: str, configured: SecretStr | None
) -> str:
    """The credential a receipt is checked with: the application's own account's when the
    URL names one (`?account=pa_...`, 403 if it has none), else the global setting's (404
    when it is not configured). Neither is ever accepted in place of the other."""
    account = request.query_params.get(ACCOUNT_QUERY_PARAMETER)
    if account is None:
        return receipts.configured(provider, configured)
    return await provider_accounts.receipt_credential(
        get_store(request), get_secrets(request), account_id=account, provider=provider, field=field
    )


_ACCOUNT_PARAMETER = {
    "in": "query",
    "name": ACCOUNT_QUERY_PARAMETER,
    "required": False,
    "schema": {"type": "string", "pattern": "^pa_[a-z2-7]{24}$"},
    "description": "An application's own provider account (`pa_...`): the signature is "
    "checked with that account's credential instead of the global one.",
}


async def _forward(request: Request, found: list[receipts.Receipt]) -> int:
    """Signal the receipts to their verifications (the client is needed only now)."""
    return await receipts.forward(
        verification_service(request),
        get_recorder(request),
        found,
        store=get_store(request),
        limiter=get_limiter(request),
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
            _ACCOUNT_PARAMETER,
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
    token = await _credential(request, "twilio", "auth_token", settings.twilio_auth_token)
    body = await _read_body(request, TWILIO_MAX_BODY)
    found = receipts.twilio_receipt(
        token,
        url=twilio_signed_url(request, settings.public_url),
        params=parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True),
        signature=request.headers.get(TWILIO_SIGNATURE_HEADER, ""),
        path=request.url.path,
    )
    if found is not None:
        await _forward(request, [found])
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
    openapi_extra={"parameters": [_ACCOUNT_PARAMETER]},
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
    verify = await _credential(request, "meta_whatsapp", "verify_token", settings.meta_verify_token)
    answer = receipts.meta_challenge(verify, mode=mode, token=verify_token, challenge=challenge)
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
            },
            _ACCOUNT_PARAMETER,
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
    secret = await _credential(request, "meta_whatsapp", "app_secret", settings.meta_app_secret)
    body = await _read_body(request, META_MAX_BODY)
    found = receipts.meta_receipts(
        secret,
        body=body,
        signature=request.headers.get(META_SIGNATURE_HEADER, ""),
        path=request.url.path,
    )
    forwarded = await _forward(request, found) if found else 0
    return WebhookAck(statuses=len(found), forwarded=forwarded)
