"""Shared httpx plumbing for the HTTP provider adapters.

One place decides what a transport failure means for a delivery:

- the request never reached the provider (DNS, refused connection, connect or pool
  timeout): `TransientDeliveryError`, safe to retry;
- the request was (or may have been) written but no answer came back (read or write
  timeout, connection dropped mid-exchange): `OutcomeUnknownError`. The provider may
  have accepted the message, so the caller must *reconcile* instead of re-sending:

  1. if the provider honours an idempotency key, retry with the same key (the adapter
     then raises a plain transient error instead, see `HttpGatewayConfig`);
  2. otherwise ask the provider whether the message exists (`TwilioProvider.find_sent`);
  3. otherwise treat the step as *sent but unconfirmed*: do not re-send, and let the
     delivery receipt (which carries the reference the adapter attached: Twilio's
     `ref` status-callback parameter, Meta's `biz_opaque_callback_data`) or the step's
     timer decide, exactly like a send whose receipt never arrives.

HTTP status classification is per provider (each reads its own error body); this module
parses `Retry-After`, builds the errors and resolves a locale against a per-adapter table.
"""

from __future__ import annotations

import email.utils
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

import httpx
from opentelemetry import trace

from otp.domain.destinations import mask
from providers.base import (  # noqa: F401  (re-exported for adapters and tests)
    OUTCOME_UNKNOWN,
    DeliveryError,
    OutboundMessage,
    OutcomeUnknownError,
    RateLimitedError,
    TransientDeliveryError,
)

# A no-op unless the process turned tracing on (otp.observability.tracing). Spans name the provider,
# method, host and status only: never the path, query or body (they hold destinations).
_tracer = trace.get_tracer("otp.providers")


@dataclass(frozen=True)
class HttpTimeouts:
    """Explicit httpx timeouts, in seconds. `read_s` bounds the wait for the provider's answer
    after the request was written: past it the outcome is unknown."""

    connect_s: float = 5.0
    read_s: float = 15.0
    write_s: float = 10.0
    pool_s: float = 5.0

    def to_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.connect_s, read=self.read_s, write=self.write_s, pool=self.pool_s
        )


class ClientHolder:
    """An injected `httpx.AsyncClient`, or one created lazily and owned (closed by `aclose`)."""

    def __init__(self, client: httpx.AsyncClient | None, timeouts: HttpTimeouts) -> None:
        self._client = client
        self._owned = client is None
        self.timeout = timeouts.to_httpx()

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            # No redirects: a provider API answering 3xx is misconfiguration, not success.
            self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        return self._client

    async def aclose(self) -> None:
        if self._owned and self._client is not None:
            await self._client.aclose()
            self._client = None


async def send_request(
    holder: ClientHolder,
    method: str,
    url: str,
    *,
    provider: str,
    reference: str = "",
    retry_safe: bool = False,
    headers: Mapping[str, str] | None = None,
    data: Mapping[str, str] | None = None,
    json: Any = None,
    params: Mapping[str, str] | None = None,
    auth: httpx.Auth | tuple[str, str] | None = None,
) -> httpx.Response:
    """Send one request and map transport failures to delivery errors (see module docstring).

    `retry_safe` says the provider deduplicates on an idempotency key we sent, so an unknown
    outcome may simply be retried.
    """
    with _tracer.start_as_current_span(
        f"{provider} {method}",
        kind=trace.SpanKind.CLIENT,
        attributes={
            "otp.provider": provider,
            "http.request.method": method,
            "server.address": httpx.URL(url).host,
        },
        record_exception=False,
    ) as span:
        try:
            response = await holder.client.request(
                method,
                url,
                headers=headers,
                data=data,
                json=json,
                params=params,
                auth=auth,
                timeout=holder.timeout,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise TransientDeliveryError(
                "connect_failed", f"{provider}: {type(exc).__name__}"
            ) from None
        except (httpx.ReadTimeout, httpx.WriteTimeout, httpx.ReadError, httpx.WriteError) as exc:
            _unknown(provider, exc, reference, retry_safe)
        except httpx.RemoteProtocolError as exc:
            # The server closed the connection mid-exchange: it may have processed the request.
            _unknown(provider, exc, reference, retry_safe)
        except httpx.TransportError as exc:
            raise TransientDeliveryError(
                "transport_error", f"{provider}: {type(exc).__name__}"
            ) from None
        span.set_attribute("http.response.status_code", response.status_code)
        return response


def _unknown(provider: str, exc: Exception, reference: str, retry_safe: bool) -> NoReturn:
    detail = f"{provider}: {type(exc).__name__} after the request was sent"
    if retry_safe:
        raise TransientDeliveryError("timeout", detail + " (idempotent, retry is safe)") from None
    raise OutcomeUnknownError(detail, reference=reference) from None


def retry_after_seconds(response: httpx.Response, *, now: datetime | None = None) -> float | None:
    """The `Retry-After` header as seconds (delta-seconds or an HTTP date), if present."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, delta)


def _refusal(provider: str, response: httpx.Response, detail: str) -> tuple[str, float | None]:
    """The message of a refusal worth retrying, and the delay its Retry-After asks for."""
    after = retry_after_seconds(response)
    text = f"{provider}: HTTP {response.status_code}"
    if detail:
        text += f" {detail}"
    if after is not None:
        text += f"; retry after {math.ceil(after)}s"
    return text, after


def rate_limited(provider: str, response: httpx.Response, detail: str = "") -> RateLimitedError:
    text, after = _refusal(provider, response, detail)
    return RateLimitedError(text, retry_after_s=after)


def server_error(
    provider: str, response: httpx.Response, detail: str = ""
) -> TransientDeliveryError:
    text, after = _refusal(provider, response, detail)
    error = TransientDeliveryError("provider_unavailable", text)
    # A 503's Retry-After is honoured like a 429's: the activity turns it into the delay
    # before its next attempt.
    error.retry_after_s = after  # type: ignore[attr-defined]
    return error


def json_body(response: httpx.Response) -> Any:
    """The response JSON, or None when the body is not JSON (never raises)."""
    try:
        return response.json()
    except ValueError:
        return None


def accepted_without_id(
    provider: str, response: httpx.Response, reference: str
) -> OutcomeUnknownError:
    """A 2xx answer we cannot read an id from: the provider probably accepted the message."""
    return OutcomeUnknownError(
        f"{provider}: HTTP {response.status_code} without a readable message id",
        reference=reference,
    )


def log_refusal(
    logger: logging.Logger,
    provider: str,
    what: str,
    message: OutboundMessage,
    response: httpx.Response,
    error: DeliveryError,
    **provider_fields: object,
) -> None:
    """Log `provider`'s refusal of `message` (`what`: "message", "sms", ...): why, the HTTP
    status and the provider's own codes; the destination masked, never the body."""
    logger.warning(
        "%s refused the %s: %s",
        provider,
        what,
        error.reason,
        extra={
            "verification_id": message.verification_id,
            "to": mask(message.to),
            "http_status": response.status_code,
            **provider_fields,
        },
    )
