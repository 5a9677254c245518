"""A generic HTTP SMS gateway: any provider that takes one JSON request per message.

Configured, not coded: the URL, an auth header, a JSON body template whose string values
may hold the placeholders `$to`, `$text`, `$code`, `$message_id`, `$idempotency_key` and
`$sender` (a routing rule's sender; without the placeholder it is sent as `sender`)
(substituted inside the JSON values, so escaping is always right), a dotted path to the
provider's message id in the answer (`data.messages.0.id`), and which HTTP statuses are
permanent or transient. The idempotency key is also sent as an `Idempotency-Key` header;
when the gateway is known to honour it (`honours_idempotency_key`), a lost answer is an
ordinary retryable timeout, otherwise it is `OutcomeUnknownError`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from string import Template
from typing import Any

import httpx

from otp.domain import Channel, DeliveryStatus
from providers.base import (
    DeliveryError,
    OutboundMessage,
    PermanentDeliveryError,
    SendReceipt,
    TransientDeliveryError,
    stable_message_id,
)
from providers.http import (
    ClientHolder,
    HttpTimeouts,
    json_body,
    log_refusal,
    rate_limited,
    send_request,
    server_error,
)

logger = logging.getLogger("otp.providers.http_gateway")

PLACEHOLDERS = frozenset({"to", "text", "code", "message_id", "idempotency_key", "sender"})
DEFAULT_BODY_TEMPLATE = '{"to": "$to", "text": "$text", "reference": "$message_id"}'


@dataclass(frozen=True)
class HttpGatewayConfig:
    url: str
    body_template: str = DEFAULT_BODY_TEMPLATE
    auth_header_name: str = "Authorization"
    auth_header_value: str = field(default="", repr=False)
    # Dotted path into the JSON answer; empty = use our own stable message id.
    message_id_path: str = "id"
    permanent_statuses: frozenset[int] = frozenset({400, 404, 410, 422})
    # Every 5xx is transient as well.
    transient_statuses: frozenset[int] = frozenset({408, 425, 429})
    honours_idempotency_key: bool = False
    name: str = "http_gateway"
    method: str = "POST"
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    timeouts: HttpTimeouts = field(default_factory=HttpTimeouts)

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError("http gateway: url must be http(s)")
        if self.method.upper() not in {"POST", "PUT"}:
            raise ValueError("http gateway: method must be POST or PUT")
        template = parse_body_template(self.body_template)
        # Fail at start-up, not at the first send, on a placeholder we do not know.
        render_body(template, dict.fromkeys(PLACEHOLDERS, "x"))


def parse_body_template(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"http gateway: body_template is not JSON: {exc}") from None


def render_body(template: Any, values: Mapping[str, str]) -> Any:
    """Substitute placeholders inside every string of a JSON value (keys included)."""
    if isinstance(template, str):
        try:
            return Template(template).substitute(values)
        except (KeyError, ValueError) as exc:
            raise ValueError(f"http gateway: bad placeholder in body_template: {exc}") from None
    if isinstance(template, list):
        return [render_body(item, values) for item in template]
    if isinstance(template, dict):
        return {
            render_body(key, values): render_body(value, values) for key, value in template.items()
        }
    return template


def extract_path(body: Any, path: str) -> Any:
    """Follow a dotted path (`data.items.0.id`) through dicts and lists; None when absent."""
    current = body
    for part in path.split("."):
        if isinstance(current, dict):
            current = current.get(part)
        elif isinstance(current, list) and part.lstrip("-").isdigit():
            index = int(part)
            current = current[index] if -len(current) <= index < len(current) else None
        else:
            return None
    return current


class HttpGatewayProvider:
    channels = frozenset({Channel.SMS})

    def __init__(self, config: HttpGatewayConfig, client: httpx.AsyncClient | None = None) -> None:
        self._config = config
        self._template = parse_body_template(config.body_template)
        self._uses_sender = "$sender" in config.body_template or "${sender}" in (
            config.body_template
        )
        self._http = ClientHolder(client, config.timeouts)
        self.name = config.name

    async def aclose(self) -> None:
        await self._http.aclose()

    def build_request(self, message: OutboundMessage) -> tuple[dict[str, str], Any, str]:
        """Headers, JSON body and our message id for one message (no I/O)."""
        cfg = self._config
        message_id = stable_message_id("gw_", message.idempotency_key)
        body = render_body(
            self._template,
            {
                "to": message.to,
                "text": message.text,
                "code": message.code,
                "message_id": message_id,
                "idempotency_key": message.idempotency_key,
                "sender": message.sender.value if message.sender else "",
            },
        )
        if message.sender is not None and isinstance(body, dict) and not self._uses_sender:
            # A routing rule's sender, for a template that does not place it: `sender`.
            body = {**body, "sender": message.sender.value}
        headers = {
            **cfg.extra_headers,
            "Idempotency-Key": message.idempotency_key,
            "Accept": "application/json",
        }
        if cfg.auth_header_value:
            headers[cfg.auth_header_name] = cfg.auth_header_value
        return headers, body, message_id

    async def send(self, message: OutboundMessage) -> SendReceipt:
        if message.channel not in self.channels:
            raise PermanentDeliveryError("channel_not_configured", f"{self.name} sends sms only")
        headers, body, message_id = self.build_request(message)
        response = await send_request(
            self._http,
            self._config.method.upper(),
            self._config.url,
            provider=self.name,
            reference=message.idempotency_key,
            retry_safe=self._config.honours_idempotency_key,
            headers=headers,
            json=body,
        )
        if response.is_success:
            provider_id = None
            if self._config.message_id_path:
                found = extract_path(json_body(response), self._config.message_id_path)
                if isinstance(found, str | int) and not isinstance(found, bool) and found != "":
                    provider_id = str(found)
            # Without a readable id, our own stable id (sent as $message_id) identifies it.
            return SendReceipt(self.name, provider_id or message_id, DeliveryStatus.SENT)
        error = self.classify(response)
        log_refusal(logger, self.name, "message", message, response, error)
        raise error

    def classify(self, response: httpx.Response) -> DeliveryError:
        cfg = self._config
        status = response.status_code
        if status == 429:
            return rate_limited(self.name, response)
        if status >= 500 or status in cfg.transient_statuses:
            return server_error(self.name, response)
        text = f"{self.name}: HTTP {status}"
        if status in cfg.permanent_statuses:
            return PermanentDeliveryError("rejected", text)
        if status in {401, 403}:
            return PermanentDeliveryError("auth_failed", text)
        if status == 409:
            # Usually "a request with this idempotency key is still being processed".
            return TransientDeliveryError("conflict", text)
        return PermanentDeliveryError("unexpected_status", text)
