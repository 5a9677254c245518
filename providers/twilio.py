"""Twilio Programmable Messaging (SMS, WhatsApp content templates) and Programmable Voice.

Wire format (REST API 2010-04-01, form-encoded, HTTP Basic auth with the account SID and
auth token, or an API key SID and secret):

- SMS: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` with `To`, `From` or
  `MessagingServiceSid`, `Body`, `StatusCallback`, and `ValidityPeriod` (the
  code's remaining life, or the configured period if shorter);
- WhatsApp: the same endpoint with `whatsapp:`-prefixed `To`/`From` and an approved
  content template (`ContentSid`, `ContentVariables` = `{"1": "<code>"}`, as Twilio's
  `whatsapp/authentication` templates take the code as their single variable);
- voice: `POST .../Calls.json` with inline `Twiml` that reads the code character by
  character with pauses, twice, in the verification's language, and `StatusCallback`.

Twilio's create endpoints take no idempotency key, so a send whose answer is lost raises
`OutcomeUnknownError`; reconcile with `find_sent` (lists recent messages/calls to the same
destination) before any re-send. Every status callback URL carries `ref=<idempotency key>`
so a receipt can be matched even when the SID never came back.
"""

from __future__ import annotations

import email.utils
import json
import logging
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from otp.domain import Channel, DeliveryStatus
from otp.domain.routing import SenderType
from otp.messages.templates import resolve_locale, voice_script
from otp.receipts.twilio import twilio_price
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

logger = logging.getLogger("otp.providers.twilio")

API_VERSION = "2010-04-01"
TWIML_MAX_CHARS = 4000  # Twilio's limit on the inline `Twiml` parameter
MAX_VALIDITY_PERIOD_S = 36_000  # Twilio's upper bound for `ValidityPeriod`

# Twilio error codes (JSON error body `code`) that retrying cannot fix, with our reason.
PERMANENT_CODES: Mapping[int, str] = MappingProxyType(
    {
        10001: "account_inactive",
        20003: "auth_failed",
        20005: "account_inactive",
        20404: "not_found",
        21210: "sender_invalid",
        21211: "invalid_number",
        21212: "sender_invalid",
        21214: "unreachable",
        21215: "region_not_permitted",
        21216: "blocked",
        21217: "invalid_number",
        21219: "unverified_number",
        21401: "invalid_number",
        21407: "invalid_number",
        21408: "region_not_permitted",
        21421: "invalid_number",
        21602: "invalid_request",
        21606: "sender_invalid",
        21608: "unverified_number",
        21610: "unsubscribed",
        21612: "unreachable",
        21614: "not_mobile",
        21617: "invalid_request",
        21635: "not_mobile",
        21656: "template_invalid",
        21659: "sender_invalid",
        21660: "sender_invalid",
        21703: "config_invalid",
        21705: "config_invalid",
        30004: "blocked",
        63003: "invalid_number",
        63007: "sender_invalid",
        63016: "whatsapp_window_closed",
        63024: "invalid_number",
        63027: "template_invalid",
        63028: "template_invalid",
        63029: "template_invalid",
    }
)
# Codes worth retrying within the step's budget.
RATE_LIMIT_CODES = frozenset({14107, 20429, 63018})
UNAVAILABLE_CODES = frozenset({20500, 20503, 30001})

# locale -> (<Say language>, <Say voice>). Standard Amazon Polly voices, which Twilio serves
# as `Polly.<Name>`; override per deployment with `TwilioConfig.voices`.
DEFAULT_VOICES: Mapping[str, tuple[str, str | None]] = MappingProxyType(
    {
        "en": ("en-US", "Polly.Joanna"),
        "en-GB": ("en-GB", "Polly.Amy"),
        "es": ("es-ES", "Polly.Lucia"),
        "es-MX": ("es-MX", "Polly.Mia"),
        "es-US": ("es-US", "Polly.Lupe"),
        "fr": ("fr-FR", "Polly.Lea"),
        "fr-CA": ("fr-CA", "Polly.Chantal"),
        "de": ("de-DE", "Polly.Vicki"),
        "pt": ("pt-BR", "Polly.Camila"),
        "pt-PT": ("pt-PT", "Polly.Ines"),
        "it": ("it-IT", "Polly.Bianca"),
        "ja": ("ja-JP", "Polly.Mizuki"),
        "zh": ("cmn-CN", "Polly.Zhiyu"),
        # Traditional Chinese text is read in Taiwanese Mandarin (Google voice).
        "zh-Hant": ("cmn-TW", "Google.cmn-TW-Standard-A"),
        "ar": ("arb", "Polly.Zeina"),
        "hi": ("hi-IN", "Polly.Aditi"),
        "nl": ("nl-NL", "Polly.Lotte"),
        "sv": ("sv-SE", "Polly.Astrid"),
        "tr": ("tr-TR", "Polly.Filiz"),
        "pl": ("pl-PL", "Polly.Ewa"),
        "ru": ("ru-RU", "Polly.Tatyana"),
        "ko": ("ko-KR", "Polly.Seoyeon"),
        # No standard Polly voice for these: Google voices, which Twilio also serves.
        "id": ("id-ID", "Google.id-ID-Standard-A"),
        "vi": ("vi-VN", "Google.vi-VN-Standard-A"),
        "th": ("th-TH", "Google.th-TH-Standard-A"),
        "uk": ("uk-UA", "Google.uk-UA-Standard-A"),
    }
)


@dataclass(frozen=True)
class TwilioConfig:
    """Twilio settings. Authenticate with `auth_token`, or with `api_key_sid` + `api_key_secret`
    (recommended in production). A channel is enabled when its sender is configured."""

    account_sid: str
    auth_token: str = field(default="", repr=False)
    api_key_sid: str = ""
    api_key_secret: str = field(default="", repr=False)
    sms_from: str = ""
    messaging_service_sid: str = ""
    whatsapp_from: str = ""
    # locale (or base language) -> approved `whatsapp/authentication` content SID (HX...).
    whatsapp_content_sids: Mapping[str, str] = field(default_factory=dict)
    voice_from: str = ""
    voices: Mapping[str, tuple[str, str | None]] = field(default_factory=dict)
    status_callback_url: str = ""
    # Seconds after which Twilio drops an undelivered SMS (a stale code is useless).
    validity_period_s: int | None = None
    base_url: str = "https://api.twilio.com"
    timeouts: HttpTimeouts = field(default_factory=HttpTimeouts)

    def __post_init__(self) -> None:
        if not self.account_sid:
            raise ValueError("twilio: account_sid is required")
        if not self.auth_token and not (self.api_key_sid and self.api_key_secret):
            raise ValueError("twilio: set auth_token, or api_key_sid and api_key_secret")

    @property
    def basic_auth(self) -> tuple[str, str]:
        if self.api_key_sid and self.api_key_secret:
            return self.api_key_sid, self.api_key_secret
        return self.account_sid, self.auth_token

    @property
    def channels(self) -> frozenset[Channel]:
        enabled: set[Channel] = set()
        if self.sms_from or self.messaging_service_sid:
            enabled.add(Channel.SMS)
        if self.whatsapp_content_sids and (self.whatsapp_from or self.messaging_service_sid):
            enabled.add(Channel.WHATSAPP)
        if self.voice_from:
            enabled.add(Channel.VOICE)
        return frozenset(enabled)


def voice_for(
    locale: str, overrides: Mapping[str, tuple[str, str | None]] | None = None
) -> tuple[str, str | None]:
    """The `<Say>` language and voice for a verification locale (exact, base, then English)."""
    table = {**DEFAULT_VOICES, **(overrides or {})}
    return table[resolve_locale(locale, table)]


def build_twiml(
    code: str,
    locale: str,
    *,
    brand: str = "",
    voices: Mapping[str, tuple[str, str | None]] | None = None,
    repeats: int = 2,
    pause_s: int = 1,
) -> str:
    """TwiML that reads `code` one character per `<Say>`, with a pause after each, `repeats` times.

    The wording comes from `otp.messages.templates.voice_script`; the voice speaks the language of that
    wording (the locale's own voice when one is configured for the same language, else the
    voice of the catalogue entry the wording fell back to)."""
    script = voice_script(code, brand=brand, locale=locale)
    table = {**DEFAULT_VOICES, **(voices or {})}
    key = resolve_locale(locale, table)
    if key.split("-", 1)[0] != script.language_tag.split("-", 1)[0]:
        key = resolve_locale(script.language_tag, table)
    language, voice = table[key]
    say_attrs = {"language": language}
    if voice:
        say_attrs["voice"] = voice
    response = ET.Element("Response")
    ET.SubElement(response, "Pause", length="1")  # let the callee get the phone to the ear
    for round_ in range(repeats):
        phrase = script.intro if round_ == 0 else script.repeat_phrase
        ET.SubElement(response, "Say", say_attrs).text = phrase
        ET.SubElement(response, "Pause", length=str(pause_s))
        for char in script.digits:
            ET.SubElement(response, "Say", say_attrs).text = char
            ET.SubElement(response, "Pause", length=str(pause_s))
    return ET.tostring(response, encoding="unicode", xml_declaration=False)


def validity_period(configured_s: int | None, expires_in_s: int | None) -> int | None:
    """`ValidityPeriod` for a message: the configured one, shortened to the code's remaining
    life, within Twilio's 1..36,000 s. Twilio drops a message still queued after it, so a
    backed-up queue never delivers a code that has expired."""
    limits = [v for v in (configured_s, expires_in_s) if v is not None]
    if not limits:
        return None
    return max(1, min(MAX_VALIDITY_PERIOD_S, *limits))


def with_reference(url: str, reference: str) -> str:
    """`url` with `ref=<reference>` added to its query (the receipt endpoint matches on it)."""
    if not url or not reference:
        return url
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "ref"]
    query.append(("ref", reference))
    return urlunsplit(parts._replace(query=urlencode(query)))


class TwilioProvider:
    name = "twilio"

    def __init__(self, config: TwilioConfig, client: httpx.AsyncClient | None = None) -> None:
        self._config = config
        self._http = ClientHolder(client, config.timeouts)
        self.channels: frozenset[Channel] = config.channels
        base = config.base_url.rstrip("/")
        self._account_url = f"{base}/{API_VERSION}/Accounts/{config.account_sid}"

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- building requests -------------------------------------------------------------

    def build_request(self, message: OutboundMessage) -> tuple[str, dict[str, str]]:
        """The endpoint and form fields for one message (no I/O; the code is in the fields)."""
        cfg = self._config
        if message.channel not in self.channels:
            raise PermanentDeliveryError(
                "channel_not_configured", f"twilio: {message.channel.value} is not configured"
            )
        callback = with_reference(cfg.status_callback_url, message.idempotency_key)
        form: dict[str, str] = {"To": message.to}
        if message.channel is Channel.VOICE:
            if not message.code:
                raise PermanentDeliveryError("code_missing", "twilio voice needs the code")
            twiml = build_twiml(
                message.code, message.locale, brand=message.brand, voices=cfg.voices
            )
            if len(twiml) > TWIML_MAX_CHARS:
                raise PermanentDeliveryError("twiml_too_long", f"{len(twiml)} characters")
            form.update({**_sender_fields(message, {"From": cfg.voice_from}), "Twiml": twiml})
            if callback:
                form["StatusCallback"] = callback
            return f"{self._account_url}/Calls.json", form
        if message.channel is Channel.WHATSAPP:
            if not message.code:
                raise PermanentDeliveryError("code_missing", "twilio whatsapp needs the code")
            key = resolve_locale(message.locale, cfg.whatsapp_content_sids)
            content_sid = cfg.whatsapp_content_sids.get(key)
            if (message.whatsapp_template_name or "").startswith("HX"):
                content_sid = message.whatsapp_template_name  # the application's own template
            if content_sid is None:
                raise PermanentDeliveryError("template_missing", "no content SID for the locale")
            form["To"] = _whatsapp_address(message.to)
            if cfg.whatsapp_from:
                default = {"From": _whatsapp_address(cfg.whatsapp_from)}
            else:
                default = {"MessagingServiceSid": cfg.messaging_service_sid}
            form.update(_sender_fields(message, default))
            form["ContentSid"] = content_sid
            form["ContentVariables"] = json.dumps({"1": message.code})
        else:
            if cfg.messaging_service_sid:
                default = {"MessagingServiceSid": cfg.messaging_service_sid}
            else:
                default = {"From": cfg.sms_from}
            form.update(_sender_fields(message, default))
            form["Body"] = message.text
        validity = validity_period(cfg.validity_period_s, message.expires_in_s)
        if validity is not None:
            form["ValidityPeriod"] = str(validity)
        if callback:
            form["StatusCallback"] = callback
        return f"{self._account_url}/Messages.json", form

    # --- sending ---------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendReceipt:
        url, form = self.build_request(message)
        response = await send_request(
            self._http,
            "POST",
            url,
            provider=self.name,
            reference=message.idempotency_key,
            data=form,
            auth=self._config.basic_auth,
            headers={"Accept": "application/json"},
        )
        if response.is_success:
            body = json_body(response)
            sid = body.get("sid") if isinstance(body, dict) else None
            if not isinstance(sid, str) or not sid:
                raise accepted_without_id(self.name, response, message.idempotency_key)
            return SendReceipt(self.name, sid, DeliveryStatus.SENT)
        error = classify_error(response)
        log_refusal(
            logger,
            "twilio",
            message.channel.value,
            message,
            response,
            error,
            provider_code=_error_code(json_body(response)),
        )
        raise error

    # --- reconciliation after an unknown outcome -------------------------------------

    async def fetch_price(self, message_id: str) -> tuple[int | None, str | None]:
        """The price Twilio charged for a message (`SM...`/`MM...`) or call (`CA...`) it
        sent, as positive micros and a currency; (None, None) while it has none yet."""
        kind = "Calls" if message_id.startswith("CA") else "Messages"
        if not message_id.isalnum():
            return None, None
        response = await send_request(
            self._http,
            "GET",
            f"{self._account_url}/{kind}/{message_id}.json",
            provider=self.name,
            retry_safe=True,
            auth=self._config.basic_auth,
            headers={"Accept": "application/json"},
        )
        if not response.is_success:
            raise classify_error(response)
        body = json_body(response)
        if not isinstance(body, dict):
            return None, None
        price, unit = body.get("price"), body.get("price_unit")
        return twilio_price(
            price if isinstance(price, str) else None, unit if isinstance(unit, str) else None
        )

    async def find_sent(self, message: OutboundMessage, *, since: datetime) -> SendReceipt | None:
        """The message or call this adapter created for `message` at or after `since`, if any.

        Call it before re-sending after `OutcomeUnknownError`. Messages match on the
        destination and body (SMS) or on the code in the rendered body (WhatsApp); calls
        match on the destination and creation time. Twilio may need a moment to list a
        resource it just created: a `None` right after the timeout is not proof of absence.
        """
        cfg = self._config
        is_call = message.channel is Channel.VOICE
        to = _whatsapp_address(message.to) if message.channel is Channel.WHATSAPP else message.to
        params = {"To": to, "PageSize": "20"}
        if is_call:
            params["From"] = cfg.voice_from
        elif message.channel is Channel.WHATSAPP and cfg.whatsapp_from:
            params["From"] = _whatsapp_address(cfg.whatsapp_from)
        elif message.channel is Channel.SMS and not cfg.messaging_service_sid:
            params["From"] = cfg.sms_from
        if message.sender is not None:
            # The rule's sender sent it: list by that one (a service lists no From).
            params.pop("From", None)
            chosen = _sender_fields(message, {})
            if "From" in chosen:
                params["From"] = chosen["From"]
        url = f"{self._account_url}/{'Calls' if is_call else 'Messages'}.json"
        response = await send_request(
            self._http,
            "GET",
            url,
            provider=self.name,
            retry_safe=True,
            params=params,
            auth=cfg.basic_auth,
            headers={"Accept": "application/json"},
        )
        if not response.is_success:
            raise classify_error(response)
        body = json_body(response)
        items = body.get("calls" if is_call else "messages") if isinstance(body, dict) else None
        if not isinstance(items, list):
            return None
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        cutoff = since - timedelta(seconds=5)  # clock skew between us and Twilio
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("sid"), str):
                continue
            created = _parse_date(item.get("date_created"))
            if created is None or created < cutoff:
                continue
            if not is_call and not _same_content(message, item.get("body")):
                continue
            return SendReceipt(self.name, item["sid"], DeliveryStatus.SENT)
        return None


def classify_error(response: httpx.Response) -> DeliveryError:
    """Map a non-2xx Twilio answer to a delivery error, by Twilio error code, then HTTP status."""
    status = response.status_code
    code = _error_code(json_body(response))
    detail = f"code {code}" if code is not None else ""
    if status == 429 or code in RATE_LIMIT_CODES:
        return rate_limited("twilio", response, detail)
    if status >= 500 or code in UNAVAILABLE_CODES:
        return server_error("twilio", response, detail)
    text = f"twilio: HTTP {status}" + (f" {detail}" if detail else "")
    if code is not None and code in PERMANENT_CODES:
        return PermanentDeliveryError(PERMANENT_CODES[code], text)
    if status == 401:
        return PermanentDeliveryError("auth_failed", text)
    if status == 403:
        return PermanentDeliveryError("forbidden", text)
    if status == 404:
        return PermanentDeliveryError("not_found", text)
    if 400 <= status < 500:
        return PermanentDeliveryError("rejected", text)
    return PermanentDeliveryError("unexpected_status", text)


def _error_code(body: Any) -> int | None:
    if isinstance(body, dict):
        code = body.get("code")
        if isinstance(code, int):
            return code
        if isinstance(code, str) and code.isdigit():
            return int(code)
    return None


def _sender_fields(message: OutboundMessage, default: dict[str, str]) -> dict[str, str]:
    """`From` or `MessagingServiceSid` of a message: the routing rule's sender where the
    channel can send from it (a WhatsApp sender gets its `whatsapp:` prefix), else `default`."""
    sender = message.sender
    if sender is None:
        return default
    if sender.type is SenderType.MESSAGING_SERVICE and message.channel is not Channel.VOICE:
        return {"MessagingServiceSid": sender.value}
    if message.channel is Channel.WHATSAPP:
        if sender.type is SenderType.WHATSAPP_SENDER:
            return {"From": _whatsapp_address(sender.value)}
        return default
    if message.channel is Channel.VOICE:
        return {"From": sender.value} if sender.type is SenderType.LONG_CODE else default
    if sender.type in {SenderType.ALPHANUMERIC, SenderType.LONG_CODE, SenderType.SHORT_CODE}:
        return {"From": sender.value}
    return default


def _whatsapp_address(value: str) -> str:
    return value if value.startswith("whatsapp:") else f"whatsapp:{value}"


def _parse_date(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


def _same_content(message: OutboundMessage, body: Any) -> bool:
    if not isinstance(body, str):
        return False
    if message.channel is Channel.WHATSAPP:
        return bool(message.code) and message.code in body
    return body == message.text
