"""Webhook delivery types and policies shared by the API, the workflow and the activity.

- the typed input/result of `WebhookDeliveryWorkflow` and of its `deliver_webhook` activity;
- the retry schedule (base delays, jitter, Retry-After bounds, total budget), as pure
  functions so the workflow and the activity compute the same next attempt time;
- the endpoint URL policy: live endpoints must be https and resolve only to public
  addresses (checked when the endpoint is saved and again before every send).

Nothing here does I/O at import time: the workflow imports this module through
`imports_passed_through`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from pydantic import Field

from otp.domain import Mode, PayloadModel

ACTIVITY_DELIVER_WEBHOOK = "deliver_webhook"
WORKFLOW_ID_PREFIX = "whk_"
TEST_EVENT_TYPE = "webhook.test"
SECRET_PURPOSE = "webhook-endpoint-secret"  # noqa: S105 - a sealing label

# Delay after attempt n (1-based) before attempt n+1; one attempt more than delays.
# About 2.9 days in total; jitter spreads each delay by +-10 %.
RETRY_SCHEDULE_S: tuple[float, ...] = (
    5,
    5 * 60,
    30 * 60,
    2 * 3600,
    5 * 3600,
    10 * 3600,
    10 * 3600,
    14 * 3600,
    14 * 3600,
    14 * 3600,
)
MAX_ATTEMPTS = len(RETRY_SCHEDULE_S) + 1
JITTER = 0.1
# A receiver's Retry-After postpones the next attempt (never brings it forward), up to this.
RETRY_AFTER_MAX_S = 12 * 3600
# No attempt starts later than this after the first one.
TOTAL_BUDGET = timedelta(days=3)


class MessageStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DISABLED = "disabled"  # the endpoint was disabled or deleted (410 Gone included)


class DeliveryOutcome(StrEnum):
    SUCCEEDED = "succeeded"  # 2xx
    RETRY = "retry"  # anything else that may work later
    GONE = "gone"  # 410: the endpoint was disabled, stop
    STOP = "stop"  # the endpoint no longer exists or is disabled, stop


class WebhookDeliveryInput(PayloadModel):
    """Start argument of WebhookDeliveryWorkflow: one event for one endpoint.

    `body` is the canonical JSON text, fixed at dispatch: every attempt sends the same bytes.
    """

    message_id: str
    endpoint_id: str
    application_id: str
    mode: Mode
    event_type: str
    verification_id: str | None = None
    body: str


class WebhookDeliveryResult(PayloadModel):
    status: MessageStatus
    attempts: int
    last_status_code: int | None = None


class DeliverWebhookInput(PayloadModel):
    """One HTTP attempt. `next_delay_s` is the planned wait before the next attempt (None: last)."""

    message_id: str
    endpoint_id: str
    application_id: str
    mode: Mode
    body: str
    attempt: int = Field(ge=1)
    next_delay_s: float | None = None
    deadline: datetime | None = None


class DeliverWebhookResult(PayloadModel):
    outcome: DeliveryOutcome
    status_code: int | None = None
    retry_after_s: float | None = None
    error: str | None = None
    duration_ms: int = 0


def workflow_id(message_id: str, endpoint_id: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}{message_id}_{endpoint_id}"


def jittered(base_s: float, unit: float) -> float:
    """`base_s` spread by +-JITTER; `unit` is a uniform draw in [0, 1)."""
    return base_s * (1 - JITTER + 2 * JITTER * unit)


def next_delay(planned_s: float, retry_after_s: float | None) -> float:
    """The wait before the next attempt: the planned one, postponed by a bounded Retry-After."""
    if retry_after_s is None or retry_after_s <= planned_s:
        return planned_s
    return min(retry_after_s, float(RETRY_AFTER_MAX_S))


# ------------------------------------------------------------------ URL policy
class UnsafeWebhookUrl(ValueError):
    """A URL this service will not post to (the message is safe to show to the caller)."""


def check_url_syntax(url: str, mode: Mode) -> tuple[str, int]:
    """(host, port) of an acceptable endpoint URL, else UnsafeWebhookUrl.

    Live: https only, and a literal IP must be public. Test: http allowed, any host.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeWebhookUrl("not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeWebhookUrl("the URL must start with https:// (or http:// in test mode)")
    if mode is Mode.LIVE and parts.scheme != "https":
        raise UnsafeWebhookUrl("live endpoints must use https")
    host = parts.hostname or ""
    if not host:
        raise UnsafeWebhookUrl("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeWebhookUrl("credentials in the URL are not allowed")
    if mode is Mode.LIVE:
        if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
            raise UnsafeWebhookUrl("live endpoints must be publicly reachable")
        literal = _literal_ip(host)
        if literal is not None and not is_public_address(literal):
            raise UnsafeWebhookUrl("live endpoints must not target private or loopback addresses")
    return host, port or (443 if parts.scheme == "https" else 80)


def _literal_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def is_public_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Globally routable unicast only: no private, loopback, link-local (metadata), CGNAT..."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def resolve_public(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, or UnsafeWebhookUrl if one of them is not public."""
    literal = _literal_ip(host)
    if literal is not None:
        if not is_public_address(literal):
            raise UnsafeWebhookUrl("the endpoint's address is not public")
        return [str(literal)]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise UnsafeWebhookUrl("the endpoint's host name does not resolve") from None
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if not is_public_address(ip):
            raise UnsafeWebhookUrl("the endpoint's host name resolves to a non-public address")
        if str(ip) not in addresses:
            addresses.append(str(ip))
    if not addresses:
        raise UnsafeWebhookUrl("the endpoint's host name does not resolve")
    return addresses
