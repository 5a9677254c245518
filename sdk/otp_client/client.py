"""`OtpClient` (blocking) and `AsyncOtpClient` (asyncio): the same methods, the same retries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from tenacity import AsyncRetrying, RetryCallState, Retrying, stop_after_attempt

from otp_client import _core
from otp_client._core import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, Call, ChannelsArg, RetryPolicy
from otp_client.models import (
    AnalyticsReport,
    CancelResult,
    CheckResult,
    NextChannelResult,
    ResendResult,
    SandboxMessage,
    Verification,
    VerificationCreated,
    VerificationEvents,
    VerificationPage,
    VerificationSummary,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookEndpointCreated,
    WebhookMessage,
    WebhookSecretRotated,
    WebhookTestSent,
)

T = TypeVar("T")


class _Base:
    def __init__(
        self,
        api_key: str,
        *,
        base_url: str,
        timeout: float | httpx.Timeout,
        max_retries: int,
        backoff: float,
        max_backoff: float,
        max_retry_after: float,
    ) -> None:
        if not api_key:
            raise ValueError("api_key is required")
        self._headers = _core.default_headers(api_key)
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self.retry_policy = RetryPolicy(
            max_retries=max_retries,
            backoff=backoff,
            max_backoff=max_backoff,
            max_retry_after=max_retry_after,
        )

    def _request_kwargs(self, call: Call[Any]) -> dict[str, Any]:
        return {
            "method": call.method,
            "url": self._base_url + call.path,
            "params": call.params,
            "json": call.body,
            "headers": {**self._headers, **call.headers},
            **({"timeout": _core.timeout_for(call, self._timeout)} if call.held_s else {}),
        }

    def _retry_args(self, call: Call[Any]) -> dict[str, Any]:
        policy = self.retry_policy

        def retry(state: RetryCallState) -> bool:
            return policy.should_retry(call, state)

        return {
            "stop": stop_after_attempt(policy.attempts),
            "wait": policy.wait,
            "retry": retry,
            "retry_error_callback": _core.last_outcome,
        }


class OtpClient(_Base):
    """Blocking client of the OTP verification API.

    `http_client` (an `httpx.Client` you own and close) or `transport` replace the
    connection layer, for proxies, TLS settings or tests.
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        max_retry_after: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(
            api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            max_backoff=max_backoff,
            max_retry_after=max_retry_after,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout, transport=transport)
        self._sleep = sleep

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self, call: Call[T]) -> T:
        retrying = Retrying(sleep=self._sleep, **self._retry_args(call))
        kwargs = self._request_kwargs(call)
        try:
            response: httpx.Response = retrying(self._http.request, **kwargs)
        except httpx.TransportError as exc:
            raise _core.transport_error(call, exc) from exc
        return _core.finish(call, response)

    # ------------------------------------------------------------ verifications
    def start_verification(
        self,
        to: str,
        *,
        channels: ChannelsArg | None = None,
        code_length: int | None = None,
        code_type: str | None = None,
        ttl_s: int | None = None,
        max_attempts: int | None = None,
        locale: str | None = None,
        brand: str | None = None,
        client_ref: str | None = None,
        user_id: str | None = None,
        user_ip: str | None = None,
        app_hash: str | None = None,
        idempotency_key: str | None = None,
        max_cost: str | None = None,
    ) -> VerificationCreated:
        """Start a verification; left-out options take the application's defaults.

        `user_id` (your opaque id of the end user) and `user_ip` (their address as your
        backend saw it) feed the service's rate limits. `max_cost` (a decimal string in
        the service's currency, e.g. "0.05") caps what the verification may cost.

        Sent with `idempotency_key` (a new UUID if None) on every attempt: a retry after
        a lost answer returns the same verification, never a second one.
        """
        return self._run(
            _core.start_verification(
                to,
                channels=channels,
                code_length=code_length,
                code_type=code_type,
                ttl_s=ttl_s,
                max_attempts=max_attempts,
                locale=locale,
                brand=brand,
                client_ref=client_ref,
                user_id=user_id,
                user_ip=user_ip,
                app_hash=app_hash,
                idempotency_key=idempotency_key,
                max_cost=max_cost,
            )
        )

    def check(
        self, verification_id: str, code: str, *, idempotency_key: str | None = None
    ) -> CheckResult:
        """Check a code; a retried check counts as one attempt (same Idempotency-Key)."""
        return self._run(_core.check(verification_id, code, idempotency_key=idempotency_key))

    def get(self, verification_id: str) -> Verification:
        """The verification now: status, deliveries, attempts."""
        return self._run(_core.get(verification_id))

    def resend(self, verification_id: str) -> ResendResult:
        """Deliver the same code again. Not retried once the request may have been sent."""
        return self._run(_core.resend(verification_id))

    def next_channel(self, verification_id: str) -> NextChannelResult:
        """Fall back to the next channel now. Not retried once the request may have been sent."""
        return self._run(_core.next_channel(verification_id))

    def cancel(self, verification_id: str) -> CancelResult:
        """End the verification. Not retried once the request may have been sent."""
        return self._run(_core.cancel(verification_id))

    # ---------------------------------------------------- search and analytics
    def search(
        self,
        *,
        status: str | None = None,
        channel: str | None = None,
        country: str | None = None,
        to: str | None = None,
        client_ref: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> VerificationPage:
        """One page of verifications, newest first; pass `next_cursor` on for the next."""
        return self._run(
            _core.search(
                status=status,
                channel=channel,
                country=country,
                to=to,
                client_ref=client_ref,
                created_after=created_after,
                created_before=created_before,
                limit=limit,
                cursor=cursor,
            )
        )

    def iter_search(
        self,
        *,
        status: str | None = None,
        channel: str | None = None,
        country: str | None = None,
        to: str | None = None,
        client_ref: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        page_size: int | None = None,
    ) -> Iterator[VerificationSummary]:
        """Every matching verification, newest first, fetching pages as needed."""
        cursor: str | None = None
        while True:
            page = self.search(
                status=status,
                channel=channel,
                country=country,
                to=to,
                client_ref=client_ref,
                created_after=created_after,
                created_before=created_before,
                limit=page_size,
                cursor=cursor,
            )
            yield from page.data
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def events(self, verification_id: str) -> VerificationEvents:
        """The verification's event log, oldest first."""
        return self._run(_core.events(verification_id))

    def analytics(
        self,
        *,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        group_by: Sequence[str] | str | None = None,
    ) -> AnalyticsReport:
        """Figures over verifications created in a range (default: the last 7 days)."""
        return self._run(
            _core.analytics(
                created_after=created_after, created_before=created_before, group_by=group_by
            )
        )

    def sandbox_messages(
        self,
        *,
        to: str | None = None,
        verification_id: str | None = None,
        limit: int | None = None,
        wait: float | None = None,
    ) -> list[SandboxMessage]:
        """Test keys only: what the sandbox provider "delivered", newest first.

        `wait` (seconds, up to 20): if nothing matches yet, the server holds the answer
        until a first message lands or the wait ends (the read timeout grows to match).
        """
        return self._run(
            _core.sandbox_messages(to=to, verification_id=verification_id, limit=limit, wait=wait)
        )

    # -------------------------------------------------------- webhook endpoints
    def create_webhook_endpoint(
        self,
        url: str,
        *,
        description: str | None = None,
        event_types: Sequence[str] | None = None,
    ) -> WebhookEndpointCreated:
        """Register an endpoint; the answer holds its `whsec_...` secret."""
        return self._run(
            _core.create_webhook_endpoint(url, description=description, event_types=event_types)
        )

    def list_webhook_endpoints(self) -> list[WebhookEndpoint]:
        return self._run(_core.list_webhook_endpoints())

    def get_webhook_endpoint(self, endpoint_id: str) -> WebhookEndpoint:
        return self._run(_core.get_webhook_endpoint(endpoint_id))

    def get_webhook_endpoint_secret(self, endpoint_id: str) -> str:
        return self._run(_core.get_webhook_endpoint_secret(endpoint_id))

    def rotate_webhook_endpoint_secret(
        self, endpoint_id: str, *, grace_period_s: int | None = None
    ) -> WebhookSecretRotated:
        """A new signing secret (shown once); the old one keeps signing for `grace_period_s`."""
        return self._run(
            _core.rotate_webhook_endpoint_secret(endpoint_id, grace_period_s=grace_period_s)
        )

    def update_webhook_endpoint(
        self,
        endpoint_id: str,
        *,
        url: str | None = None,
        description: str | None = None,
        event_types: Sequence[str] | None = None,
        enabled: bool | None = None,
    ) -> WebhookEndpoint:
        return self._run(
            _core.update_webhook_endpoint(
                endpoint_id,
                url=url,
                description=description,
                event_types=event_types,
                enabled=enabled,
            )
        )

    def delete_webhook_endpoint(self, endpoint_id: str) -> None:
        self._run(_core.delete_webhook_endpoint(endpoint_id))

    def send_webhook_test(self, endpoint_id: str) -> WebhookTestSent:
        """Send a `webhook.test` event to the endpoint through the real delivery path."""
        return self._run(_core.send_webhook_test(endpoint_id))

    def list_webhook_messages(
        self, endpoint_id: str, *, verification_id: str | None = None, limit: int | None = None
    ) -> list[WebhookMessage]:
        return self._run(
            _core.list_webhook_messages(endpoint_id, verification_id=verification_id, limit=limit)
        )

    def list_webhook_attempts(self, endpoint_id: str, message_id: str) -> list[WebhookAttempt]:
        return self._run(_core.list_webhook_attempts(endpoint_id, message_id))


class AsyncOtpClient(_Base):
    """Asyncio client of the OTP verification API (same methods as `OtpClient`, awaited)."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        max_retry_after: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(
            api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            max_backoff=max_backoff,
            max_retry_after=max_retry_after,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout, transport=transport)
        self._sleep = sleep

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _run(self, call: Call[T]) -> T:
        retrying = AsyncRetrying(sleep=self._sleep, **self._retry_args(call))
        kwargs = self._request_kwargs(call)
        try:
            response: httpx.Response = await retrying(self._http.request, **kwargs)
        except httpx.TransportError as exc:
            raise _core.transport_error(call, exc) from exc
        return _core.finish(call, response)

    # ------------------------------------------------------------ verifications
    async def start_verification(
        self,
        to: str,
        *,
        channels: ChannelsArg | None = None,
        code_length: int | None = None,
        code_type: str | None = None,
        ttl_s: int | None = None,
        max_attempts: int | None = None,
        locale: str | None = None,
        brand: str | None = None,
        client_ref: str | None = None,
        user_id: str | None = None,
        user_ip: str | None = None,
        app_hash: str | None = None,
        idempotency_key: str | None = None,
        max_cost: str | None = None,
    ) -> VerificationCreated:
        """Start a verification (see `OtpClient.start_verification`)."""
        return await self._run(
            _core.start_verification(
                to,
                channels=channels,
                code_length=code_length,
                code_type=code_type,
                ttl_s=ttl_s,
                max_attempts=max_attempts,
                locale=locale,
                brand=brand,
                client_ref=client_ref,
                user_id=user_id,
                user_ip=user_ip,
                app_hash=app_hash,
                idempotency_key=idempotency_key,
                max_cost=max_cost,
            )
        )

    async def check(
        self, verification_id: str, code: str, *, idempotency_key: str | None = None
    ) -> CheckResult:
        """Check a code; a retried check counts as one attempt (same Idempotency-Key)."""
        return await self._run(_core.check(verification_id, code, idempotency_key=idempotency_key))

    async def get(self, verification_id: str) -> Verification:
        return await self._run(_core.get(verification_id))

    async def resend(self, verification_id: str) -> ResendResult:
        """Deliver the same code again. Not retried once the request may have been sent."""
        return await self._run(_core.resend(verification_id))

    async def next_channel(self, verification_id: str) -> NextChannelResult:
        """Fall back to the next channel now. Not retried once the request may have been sent."""
        return await self._run(_core.next_channel(verification_id))

    async def cancel(self, verification_id: str) -> CancelResult:
        """End the verification. Not retried once the request may have been sent."""
        return await self._run(_core.cancel(verification_id))

    # ---------------------------------------------------- search and analytics
    async def search(
        self,
        *,
        status: str | None = None,
        channel: str | None = None,
        country: str | None = None,
        to: str | None = None,
        client_ref: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> VerificationPage:
        return await self._run(
            _core.search(
                status=status,
                channel=channel,
                country=country,
                to=to,
                client_ref=client_ref,
                created_after=created_after,
                created_before=created_before,
                limit=limit,
                cursor=cursor,
            )
        )

    async def iter_search(
        self,
        *,
        status: str | None = None,
        channel: str | None = None,
        country: str | None = None,
        to: str | None = None,
        client_ref: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[VerificationSummary]:
        """Every matching verification, newest first, fetching pages as needed."""
        cursor: str | None = None
        while True:
            page = await self.search(
                status=status,
                channel=channel,
                country=country,
                to=to,
                client_ref=client_ref,
                created_after=created_after,
                created_before=created_before,
                limit=page_size,
                cursor=cursor,
            )
            for item in page.data:
                yield item
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def events(self, verification_id: str) -> VerificationEvents:
        return await self._run(_core.events(verification_id))

    async def analytics(
        self,
        *,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        group_by: Sequence[str] | str | None = None,
    ) -> AnalyticsReport:
        return await self._run(
            _core.analytics(
                created_after=created_after, created_before=created_before, group_by=group_by
            )
        )

    async def sandbox_messages(
        self,
        *,
        to: str | None = None,
        verification_id: str | None = None,
        limit: int | None = None,
        wait: float | None = None,
    ) -> list[SandboxMessage]:
        return await self._run(
            _core.sandbox_messages(to=to, verification_id=verification_id, limit=limit, wait=wait)
        )

    # -------------------------------------------------------- webhook endpoints
    async def create_webhook_endpoint(
        self,
        url: str,
        *,
        description: str | None = None,
        event_types: Sequence[str] | None = None,
    ) -> WebhookEndpointCreated:
        return await self._run(
            _core.create_webhook_endpoint(url, description=description, event_types=event_types)
        )

    async def list_webhook_endpoints(self) -> list[WebhookEndpoint]:
        return await self._run(_core.list_webhook_endpoints())

    async def get_webhook_endpoint(self, endpoint_id: str) -> WebhookEndpoint:
        return await self._run(_core.get_webhook_endpoint(endpoint_id))

    async def get_webhook_endpoint_secret(self, endpoint_id: str) -> str:
        return await self._run(_core.get_webhook_endpoint_secret(endpoint_id))

    async def rotate_webhook_endpoint_secret(
        self, endpoint_id: str, *, grace_period_s: int | None = None
    ) -> WebhookSecretRotated:
        """A new signing secret (shown once); the old one keeps signing for `grace_period_s`."""
        return await self._run(
            _core.rotate_webhook_endpoint_secret(endpoint_id, grace_period_s=grace_period_s)
        )

    async def update_webhook_endpoint(
        self,
        endpoint_id: str,
        *,
        url: str | None = None,
        description: str | None = None,
        event_types: Sequence[str] | None = None,
        enabled: bool | None = None,
    ) -> WebhookEndpoint:
        return await self._run(
            _core.update_webhook_endpoint(
                endpoint_id,
                url=url,
                description=description,
                event_types=event_types,
                enabled=enabled,
            )
        )

    async def delete_webhook_endpoint(self, endpoint_id: str) -> None:
        await self._run(_core.delete_webhook_endpoint(endpoint_id))

    async def send_webhook_test(self, endpoint_id: str) -> WebhookTestSent:
        return await self._run(_core.send_webhook_test(endpoint_id))

    async def list_webhook_messages(
        self, endpoint_id: str, *, verification_id: str | None = None, limit: int | None = None
    ) -> list[WebhookMessage]:
        return await self._run(
            _core.list_webhook_messages(endpoint_id, verification_id=verification_id, limit=limit)
        )

    async def list_webhook_attempts(
        self, endpoint_id: str, message_id: str
    ) -> list[WebhookAttempt]:
        return await self._run(_core.list_webhook_attempts(endpoint_id, message_id))
