"""Meta WhatsApp Cloud API: the code through an approved copy-code authentication template.

Wire format: `POST {base}/{version}/{phone_number_id}/messages` with a Bearer access token
and a JSON body `{"messaging_product": "whatsapp", "recipient_type": "individual",
"to": "<digits>", "type": "template", "template": {"name", "language": {"code"},
"components": [body parameter = code, button (sub_type "url", index "0") parameter = code]}}`.
Meta answers `{"messaging_product", "contacts": [...], "messages": [{"id": "wamid..."}]}` or a
Graph error `{"error": {"message", "type", "code", "error_subcode", "error_data",
"fbtrace_id"}}`.

The Cloud API takes no idempotency key. The adapter puts the idempotency key in
`biz_opaque_callback_data`, which Meta echoes in every status webhook for the message, so
after `OutcomeUnknownError` the caller does not re-send: the status webhook (matched on
that reference) or the step's timer settles the step.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import httpx

from otp.domain import Channel, DeliveryStatus
from otp.domain.routing import SenderType
from otp.messages.templates import resolve_locale
from providers.base import (
    DeliveryError,
    OutboundMessage,
    PermanentDeliveryError,
    SendReceipt,
)
from providers.http import (
    ClientHolder,
    HttpTimeouts,
    accepted_without_id,
    json_body,
    log_refusal,
    rate_limited,
    send_request,
    server_error,
)

logger = logging.getLogger("otp.providers.meta_whatsapp")

BIZ_OPAQUE_MAX_CHARS = 512

# Graph / Cloud API error codes that retrying cannot fix, with our reason.
PERMANENT_CODES: Mapping[int, str] = MappingProxyType(
    {
        0: "auth_failed",
        3: "permission_denied",
        10: "permission_denied",
        100: "invalid_request",
        190: "auth_failed",
        200: "permission_denied",
        368: "blocked",
        130403: "blocked",
        130497: "region_not_permitted",
        131005: "permission_denied",
        131008: "invalid_request",
        131009: "invalid_request",
        131021: "invalid_recipient",
        131026: "undeliverable",
        131030: "recipient_not_allowed",
        131031: "account_locked",
        131042: "billing",
        131045: "config_invalid",
        131047: "whatsapp_window_closed",
        131049: "ecosystem_limited",
        131050: "unsubscribed",
        131051: "invalid_request",
        132000: "template_invalid",
        132001: "template_missing",
        132005: "template_invalid",
        132007: "template_invalid",
        132012: "template_invalid",
        132015: "template_paused",
        132016: "template_disabled",
        133010: "config_invalid",
    }
)
RATE_LIMIT_CODES = frozenset({4, 80007, 130429, 131048, 131056})
UNAVAILABLE_CODES = frozenset({1, 2, 131000, 131016, 133004})

# verification locale (or base language) -> the language code of the approved template.
DEFAULT_LANGUAGES: Mapping[str, str] = MappingProxyType(
    {
        "en": "en_US",
        "en-GB": "en_GB",
        "es": "es",
        "es-ES": "es_ES",
        "es-MX": "es_MX",
        "fr": "fr",
        "de": "de",
        "pt": "pt_BR",
        "pt-PT": "pt_PT",
        "it": "it",
        "ja": "ja",
        "zh": "zh_CN",
        "zh-HK": "zh_HK",
        "zh-TW": "zh_TW",
        "zh-Hant": "zh_TW",
        "ar": "ar",
        "hi": "hi",
    }
)


@dataclass(frozen=True)
class MetaWhatsAppConfig:
    phone_number_id: str
    access_token: str = field(repr=False)
    template_name: str
    # Overrides/extends DEFAULT_LANGUAGES; list only languages the template is approved in.
    languages: Mapping[str, str] = field(default_factory=dict)
    api_version: str = "v23.0"
    base_url: str = "https://graph.facebook.com"
    timeouts: HttpTimeouts = field(default_factory=HttpTimeouts)

    def __post_init__(self) -> None:
        if not (self.phone_number_id and self.access_token and self.template_name):
            raise ValueError("meta whatsapp: phone_number_id, access_token, template_name needed")


def template_language(locale: str, overrides: Mapping[str, str] | None = None) -> str:
    table = {**DEFAULT_LANGUAGES, **(overrides or {})}
    return table[resolve_locale(locale, table)]


def build_payload(message: OutboundMessage, config: MetaWhatsAppConfig) -> dict[str, Any]:
    """The JSON body for one authentication-template message (contains the code)."""
    if not message.code:
        raise PermanentDeliveryError("code_missing", "meta whatsapp needs the code")
    digits = "".join(ch for ch in message.to if ch.isdigit())
    if not digits:
        raise PermanentDeliveryError("invalid_number", "no digits in the destination")
    code_parameter = [{"type": "text", "text": message.code}]
    name, language = config.template_name, template_language(message.locale, config.languages)
    if message.whatsapp_template_name and not message.whatsapp_template_name.startswith("HX"):
        name = message.whatsapp_template_name  # the application's own template
        language = message.whatsapp_language or language
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": digits,
        "type": "template",
        "template": {
            "name": name,
            "language": {"code": language},
            "components": [
                {"type": "body", "parameters": code_parameter},
                # Copy-code (and one-tap) buttons are URL buttons once the template is created.
                {
                    "type": "button",
                    "sub_type": "url",
                    "index": "0",
                    "parameters": code_parameter,
                },
            ],
        },
        "biz_opaque_callback_data": message.idempotency_key[:BIZ_OPAQUE_MAX_CHARS],
    }


class MetaWhatsAppProvider:
    name = "meta_whatsapp"
    channels = frozenset({Channel.WHATSAPP})

    def __init__(self, config: MetaWhatsAppConfig, client: httpx.AsyncClient | None = None) -> None:
        self._config = config
        self._http = ClientHolder(client, config.timeouts)
        self._base = f"{config.base_url.rstrip('/')}/{config.api_version}"
        self._url = f"{self._base}/{config.phone_number_id}/messages"

    def url_for(self, message: OutboundMessage) -> str:
        """The messages endpoint of the sending number: a routing rule's WhatsApp sender
        when it is a phone number id (digits), else the configured one."""
        sender = message.sender
        if (
            sender is not None
            and sender.type is SenderType.WHATSAPP_SENDER
            and sender.value.isdigit()
        ):
            return f"{self._base}/{sender.value}/messages"
        return self._url

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, message: OutboundMessage) -> SendReceipt:
        if message.channel is not Channel.WHATSAPP:
            raise PermanentDeliveryError("channel_not_configured", "meta sends whatsapp only")
        payload = build_payload(message, self._config)
        response = await send_request(
            self._http,
            "POST",
            self.url_for(message),
            provider=self.name,
            reference=message.idempotency_key,
            json=payload,
            headers={"Authorization": f"Bearer {self._config.access_token}"},
        )
        body = json_body(response)
        if response.is_success:
            message_id = _message_id(body)
            if message_id is None:
                raise accepted_without_id(self.name, response, message.idempotency_key)
            return SendReceipt(self.name, message_id, DeliveryStatus.SENT)
        error = classify_error(response)
        code, subcode = _graph_codes(body)
        log_refusal(
            logger,
            "meta",
            "whatsapp message",
            message,
            response,
            error,
            provider_code=code,
            provider_subcode=subcode,
        )
        raise error


def classify_error(response: httpx.Response) -> DeliveryError:
    """Map a non-2xx Graph answer to a delivery error, by error code, then HTTP status."""
    status = response.status_code
    code, subcode = _graph_codes(json_body(response))
    detail = ""
    if code is not None:
        detail = f"code {code}" + (f"/{subcode}" if subcode is not None else "")
    if status == 429 or code in RATE_LIMIT_CODES:
        return rate_limited("meta", response, detail)
    if status >= 500 or code in UNAVAILABLE_CODES:
        return server_error("meta", response, detail)
    text = f"meta: HTTP {status}" + (f" {detail}" if detail else "")
    if code is not None and code in PERMANENT_CODES:
        return PermanentDeliveryError(PERMANENT_CODES[code], text)
    if code is not None and 200 <= code <= 299:
        return PermanentDeliveryError("permission_denied", text)
    if status == 401:
        return PermanentDeliveryError("auth_failed", text)
    if status == 403:
        return PermanentDeliveryError("forbidden", text)
    if status == 404:
        return PermanentDeliveryError("not_found", text)
    return PermanentDeliveryError("rejected", text)


def _graph_codes(body: Any) -> tuple[int | None, int | None]:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None
    code = error.get("code")
    subcode = error.get("error_subcode")
    return (
        code if isinstance(code, int) else None,
        subcode if isinstance(subcode, int) else None,
    )


def _message_id(body: Any) -> str | None:
    messages = body.get("messages") if isinstance(body, dict) else None
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        message_id = messages[0].get("id")
        if isinstance(message_id, str) and message_id:
            return message_id
    return None
