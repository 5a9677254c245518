"""/codec: the payload codec server the Temporal UI and CLI call to show decoded payloads.

`POST /codec/decode` and `POST /codec/encode` take and return `{"payloads": [...]}` in
proto3 JSON (Temporal's remote codec protocol). Who may call it:
- with `OTP_CODEC_TOKEN` set: requests carrying `Authorization: Bearer <token>`
  (`temporal --codec-auth "Bearer ..."`, or the UI passing its user's access token);
- in dev without a token: callers on this machine only (the dev stack's UI);
- in production without a token: nobody (404, as if the route did not exist).
Browsers need CORS: the exact origins of `OTP_CODEC_CORS_ORIGINS` (the UI) may call it.
Without the codec an operator sees ciphertext (`binary/encrypted`) in the UI.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from google.protobuf import json_format
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.api.common.v1 import Payloads

from api.deps import SecretsDep, SettingsDep
from api.problems import CodecForbidden, field_error, invalid
from otp.security.codec import UnknownKeyError, codec_from_secrets
from otp.settings import Settings

logger = logging.getLogger("otp.api")

router = APIRouter(prefix="/codec", tags=["codec"])

_bearer = HTTPBearer(auto_error=False, scheme_name="CodecToken")
MAX_BODY_BYTES = 4 * 1024 * 1024
_ALLOWED_HEADERS = "content-type, x-namespace, authorization"


def _origins(settings: Settings) -> set[str]:
    configured = {
        o.strip().rstrip("/") for o in settings.codec_cors_origins.split(",") if o.strip()
    }
    if configured:
        return configured
    port = settings.temporal_ui_port
    return {f"http://127.0.0.1:{port}", f"http://localhost:{port}"}


def _cors_headers(request: Request, settings: Settings) -> dict[str, str]:
    origin = request.headers.get("origin", "")
    if origin.rstrip("/") not in _origins(settings):
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
    }


def _is_loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def authorize(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    token = settings.codec_token.get_secret_value() if settings.codec_token else None
    if token is None:
        if settings.env != "dev":
            raise StarletteHTTPException(status_code=404, detail="Not Found")
        if not _is_loopback(request):
            raise CodecForbidden()
        return
    presented = credentials.credentials if credentials else ""
    if not hmac.compare_digest(
        hashlib.sha256(presented.encode()).digest(), hashlib.sha256(token.encode()).digest()
    ):
        raise CodecForbidden()


async def _payloads(request: Request) -> Payloads:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise invalid([field_error("#", f"at most {MAX_BODY_BYTES} bytes")])
    try:
        return json_format.Parse(raw or b"{}", Payloads(), ignore_unknown_fields=True)
    except json_format.ParseError:
        raise invalid(
            [field_error("#/payloads", 'expected {"payloads": [...]} in proto3 JSON')]
        ) from None


def _answer(payloads: Payloads, headers: dict[str, str]) -> Response:
    body = json_format.MessageToJson(payloads, indent=None)
    return Response(body, media_type="application/json", headers=headers)


@router.options("/{operation}", include_in_schema=False)
async def preflight(operation: str, request: Request, settings: SettingsDep) -> Response:
    """CORS preflight for the Temporal UI (exact origin, POST, the UI's headers)."""
    headers = _cors_headers(request, settings)
    if operation not in ("encode", "decode") or not headers:
        return Response(status_code=403)
    headers.update(
        {
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": _ALLOWED_HEADERS,
            "Access-Control-Max-Age": "600",
        }
    )
    return Response(status_code=204, headers=headers)


@router.post("/decode", dependencies=[Depends(authorize)], summary="Decode payloads")
async def decode(request: Request, settings: SettingsDep, secrets: SecretsDep) -> Response:
    """Decrypt `binary/encrypted` payloads with any configured key id; others pass through."""
    payloads = await _payloads(request)
    try:
        decoded = await codec_from_secrets(secrets).decode(payloads.payloads)
    except UnknownKeyError:
        raise invalid(
            [field_error("#/payloads", "encrypted with a key this service does not hold")]
        ) from None
    except Exception:  # tampered or truncated ciphertext
        raise invalid([field_error("#/payloads", "a payload could not be decrypted")]) from None
    logger.info(
        "payloads decoded",
        extra={"count": len(decoded), "namespace": request.headers.get("x-namespace", "")},
    )
    return _answer(Payloads(payloads=decoded), _cors_headers(request, settings))


@router.post("/encode", dependencies=[Depends(authorize)], summary="Encode payloads")
async def encode(request: Request, settings: SettingsDep, secrets: SecretsDep) -> Response:
    """Encrypt payloads with the current write key (for the UI's signal/query inputs)."""
    payloads = await _payloads(request)
    encoded = await codec_from_secrets(secrets).encode(payloads.payloads)
    return _answer(Payloads(payloads=encoded), _cors_headers(request, settings))
