"""Webhook activities: sign and POST one attempt of one message to one endpoint, record it.

One call is one HTTP attempt; the workflow owns the schedule. The activity
- loads the endpoint (scoped by application and mode) and stops if it is gone or disabled;
- in live mode, resolves the host at send time and refuses any non-public address, then
  connects to the checked address itself (TLS still verifies the host name), so a DNS
  answer cannot change between the check and the connection;
- posts the fixed body with a fresh `webhook-timestamp` and signature, explicit timeouts,
  no redirects followed, and without reading more of the answer than its status line;
- records the attempt (status code, duration, a short error) and the message's progress.
Logs and records never hold the body, the secret or the endpoint URL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import httpx
from temporalio import activity

from activities.sandbox_scenarios import ScenarioLookup
from otp.domain import Mode
from otp.security.sealing import SealError, unseal
from otp.settings import Secrets, Settings
from otp.store import Store, WebhookEndpoint
from otp.store import webhooks as db
from otp.webhooks.models import (
    ACTIVITY_DELIVER_WEBHOOK,
    SECRET_PURPOSE,
    DeliverWebhookInput,
    DeliverWebhookResult,
    DeliveryOutcome,
    MessageStatus,
    UnsafeWebhookUrl,
    check_url_syntax,
    next_delay,
    resolve_public,
)
from otp.webhooks.signing import signed_headers
from providers.http import retry_after_seconds

logger = logging.getLogger("otp.activities")

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
USER_AGENT = "otp-webhooks/1"

Resolver = Callable[[str, int], Awaitable[list[str]]]


def _pinned_url(url: str, address: str) -> str:
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    return urlunsplit(parts._replace(netloc=host + (f":{parts.port}" if parts.port else "")))


class WebhookActivities:
    """Activities as methods of one object holding the store, secrets and an HTTP client."""

    def __init__(
        self,
        store: Store,
        secrets: Secrets,
        settings: Settings,
        http: httpx.AsyncClient | Callable[[], httpx.AsyncClient] | None = None,
        *,
        resolver: Resolver = resolve_public,
        clock: Callable[[], float] = time.time,
        scenarios: ScenarioLookup | None = None,
    ) -> None:
        self._store = store
        self._secrets = secrets
        self._settings = settings
        self._http = http
        self._client: httpx.AsyncClient | None = (
            http if isinstance(http, httpx.AsyncClient) else None
        )
        self._resolver = resolver
        self._clock = clock
        self._scenarios = scenarios

    def _http_client(self) -> httpx.AsyncClient:
        if self._client is None:
            factory = self._http if callable(self._http) else None
            self._client = (
                factory()
                if factory is not None
                else httpx.AsyncClient(follow_redirects=False, timeout=TIMEOUT)
            )
        return self._client

    @activity.defn(name=ACTIVITY_DELIVER_WEBHOOK)
    async def deliver_webhook(self, input: DeliverWebhookInput) -> DeliverWebhookResult:
        """POST one attempt of a message to its endpoint and record the outcome."""
        log = {
            "message_id": input.message_id,
            "endpoint_id": input.endpoint_id,
            "attempt": input.attempt,
            "mode": str(input.mode),
        }
        endpoint = await db.get_endpoint(
            self._store,
            endpoint_id=input.endpoint_id,
            application_id=input.application_id,
            mode=str(input.mode),
        )
        if endpoint is None or not endpoint.enabled:
            await self._finish(input, MessageStatus.DISABLED, None)
            logger.info("webhook endpoint gone or disabled: delivery stopped", extra=log)
            return DeliverWebhookResult(
                outcome=DeliveryOutcome.STOP, error="endpoint deleted or disabled"
            )

        started = time.monotonic()
        # Test mode: a sandbox scenario may answer for the endpoint (it is not contacted).
        simulated = await self._scenarios.webhook_result(input) if self._scenarios else None
        result = simulated or await self._post(
            input, endpoint.url, endpoint.secret_sealed, self._previous_secret(endpoint)
        )
        result.duration_ms = int((time.monotonic() - started) * 1000)
        await db.record_attempt(
            self._store,
            message_id=input.message_id,
            endpoint_id=input.endpoint_id,
            attempt=input.attempt,
            status_code=result.status_code,
            error=result.error,
            duration_ms=result.duration_ms,
        )
        if result.outcome is DeliveryOutcome.SUCCEEDED:
            await self._finish(input, MessageStatus.SUCCEEDED, result.status_code)
        elif result.outcome is DeliveryOutcome.GONE:
            await db.disable_endpoint(
                self._store,
                endpoint_id=input.endpoint_id,
                application_id=input.application_id,
                mode=str(input.mode),
                reason="the endpoint answered 410 Gone",
            )
            await self._finish(input, MessageStatus.DISABLED, result.status_code)
        else:
            await self._progress(input, result)
        logger.info(
            "webhook attempt",
            extra={
                **log,
                "outcome": str(result.outcome),
                "status_code": result.status_code,
                "error": result.error,
                "duration_ms": result.duration_ms,
            },
        )
        return result

    def _previous_secret(self, endpoint: WebhookEndpoint) -> str | None:
        """The sealed secret of before the last rotation while its grace period lasts."""
        expires = endpoint.previous_secret_expires_at
        if endpoint.previous_secret_sealed is None or expires is None:
            return None
        if expires.timestamp() <= self._clock():
            return None  # expired: purge_expired_webhook_secrets drops it from the row
        return endpoint.previous_secret_sealed

    async def _post(
        self, input: DeliverWebhookInput, url: str, sealed: str, previous: str | None = None
    ) -> DeliverWebhookResult:
        retry = DeliveryOutcome.RETRY
        try:
            secret = unseal(self._secrets, sealed, purpose=SECRET_PURPOSE)
            olds = (
                []
                if previous is None
                else [unseal(self._secrets, previous, purpose=SECRET_PURPOSE)]
            )
        except SealError:
            return DeliverWebhookResult(outcome=retry, error="signing secret cannot be unsealed")
        try:
            host, port = check_url_syntax(url, input.mode)
            target, extensions = url, {}
            request_headers = {
                "content-type": "application/json",
                "user-agent": USER_AGENT,
                **signed_headers(
                    secret,
                    input.message_id,
                    int(self._clock()),
                    input.body,
                    previous_secrets=olds,
                ),
            }
            if input.mode is Mode.LIVE:
                addresses = await self._resolver(host, port)
                target = _pinned_url(url, addresses[0])
                request_headers["host"] = urlsplit(url).netloc
                extensions = {"sni_hostname": host}
        except UnsafeWebhookUrl as exc:
            return DeliverWebhookResult(outcome=retry, error=f"refused: {exc}")
        try:
            async with self._http_client().stream(
                "POST",
                target,
                content=input.body.encode(),
                headers=request_headers,
                timeout=TIMEOUT,
                follow_redirects=False,
                extensions=extensions,
            ) as response:
                code = response.status_code
                after = retry_after_seconds(response)
        except httpx.HTTPError as exc:
            return DeliverWebhookResult(outcome=retry, error=type(exc).__name__)
        if 200 <= code < 300:
            return DeliverWebhookResult(outcome=DeliveryOutcome.SUCCEEDED, status_code=code)
        if code == 410:
            return DeliverWebhookResult(outcome=DeliveryOutcome.GONE, status_code=code)
        error = "redirect not followed" if 300 <= code < 400 else f"HTTP {code}"
        return DeliverWebhookResult(
            outcome=retry, status_code=code, retry_after_s=after, error=error
        )

    async def _finish(
        self, input: DeliverWebhookInput, status: MessageStatus, status_code: int | None
    ) -> None:
        await db.update_message(
            self._store,
            message_id=input.message_id,
            endpoint_id=input.endpoint_id,
            status=str(status),
            attempts=input.attempt if status_code is not None else None,
            last_status_code=status_code,
        )

    async def _progress(self, input: DeliverWebhookInput, result: DeliverWebhookResult) -> None:
        now = datetime.now(UTC)
        next_at: datetime | None = None
        if input.next_delay_s is not None:
            next_at = now + timedelta(seconds=next_delay(input.next_delay_s, result.retry_after_s))
            if input.deadline is not None and next_at > input.deadline:
                next_at = input.deadline if input.deadline > now else None
        await db.update_message(
            self._store,
            message_id=input.message_id,
            endpoint_id=input.endpoint_id,
            status=str(MessageStatus.PENDING if next_at else MessageStatus.FAILED),
            attempts=input.attempt,
            last_status_code=result.status_code,
            next_attempt_at=next_at,
        )
