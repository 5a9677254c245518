"""What both clients share: the calls of the API and when one may be sent again.

A call is retried only when sending it twice cannot do the work twice:

- `SAFE` calls: reads (GET), a PATCH of an endpoint (it sets values), and the two POSTs
  that carry an `Idempotency-Key` (create, check; the service answers a repeat with the
  first outcome). They are retried on connection errors and timeouts, on 502/503/504,
  on 429 and on 409 `idempotency-key-in-flight`, honouring `Retry-After`.
- `UNSAFE` calls: resend, next-channel, cancel, endpoint create/delete and test sends.
  They are retried only when the request certainly never left this process (the
  connection could not be opened); any later failure is raised as it is.

A replayed answer (`Idempotent-Replayed: true`) is final: the same key answers it again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel
from tenacity import RetryCallState
from tenacity.wait import wait_random_exponential

from otp_client._version import __version__
from otp_client.errors import (
    IDEMPOTENCY_KEY_IN_FLIGHT,
    OtpConnectionError,
    OtpError,
    OtpTimeoutError,
    UnexpectedResponseError,
    error_from_response,
    retry_after_of,
)
from otp_client.models import (
    AnalyticsReport,
    CancelResult,
    ChannelStep,
    CheckResult,
    NextChannelResult,
    ResendResult,
    SandboxMessage,
    SandboxMessageList,
    Verification,
    VerificationCreated,
    VerificationEvents,
    VerificationPage,
    WebhookAttempt,
    WebhookAttemptList,
    WebhookEndpoint,
    WebhookEndpointCreated,
    WebhookEndpointList,
    WebhookEndpointSecret,
    WebhookMessage,
    WebhookMessageList,
    WebhookSecretRotated,
    WebhookTestSent,
)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 15.0
USER_AGENT = f"otp-verify-client/{__version__}"

# Errors raised before a byte of the request was sent: retrying cannot repeat anything.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Errors after which a safe call may be sent again.
TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
RETRY_STATUSES = frozenset({429, 502, 503, 504})


class Safety(Enum):
    SAFE = "safe"
    UNSAFE = "unsafe"


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API operation: the request to send and how to read its answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    safety: Safety
    params: Mapping[str, str] | None = None
    body: Any = None
    idempotency_key: str | None = None
    # Seconds the server may hold the answer on purpose (a long poll): added to the read
    # timeout so the client does not give up on an answer that is meant to take time.
    held_s: float = 0.0

    @property
    def headers(self) -> dict[str, str]:
        if self.idempotency_key is None:
            return {}
        return {"Idempotency-Key": self.idempotency_key}


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded attempts, exponential backoff with full jitter, `Retry-After` honoured."""

    max_retries: int = 3
    backoff: float = 0.5  # first backoff window, seconds
    max_backoff: float = 8.0
    max_retry_after: float = 30.0  # a longer Retry-After is raised, not slept through
    _jitter: wait_random_exponential = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        object.__setattr__(
            self, "_jitter", wait_random_exponential(multiplier=self.backoff, max=self.max_backoff)
        )

    @property
    def attempts(self) -> int:
        return self.max_retries + 1

    def should_retry(self, call: Call[Any], state: RetryCallState) -> bool:
        outcome = state.outcome
        if outcome is None:
            return False
        if outcome.failed:
            exc = outcome.exception()
            if isinstance(exc, NOT_SENT):
                return True
            return call.safety is Safety.SAFE and isinstance(exc, TRANSIENT)
        response: httpx.Response = outcome.result()
        return call.safety is Safety.SAFE and self._retryable_response(response)

    def _retryable_response(self, response: httpx.Response) -> bool:
        if response.headers.get("idempotent-replayed", "").lower() == "true":
            return False
        status = response.status_code
        if status not in RETRY_STATUSES and not (status == 409 and _in_flight(response)):
            return False
        retry_after = retry_after_of(response)
        return retry_after is None or retry_after <= self.max_retry_after

    def wait(self, state: RetryCallState) -> float:
        outcome = state.outcome
        if outcome is not None and not outcome.failed:
            retry_after = retry_after_of(outcome.result())
            if retry_after is not None:
                return retry_after
        return float(self._jitter(state))


def _in_flight(response: httpx.Response) -> bool:
    try:
        body = json.loads(response.content)
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("type") == IDEMPOTENCY_KEY_IN_FLIGHT


def last_outcome(state: RetryCallState) -> httpx.Response:
    """After the last attempt: its response, or its exception raised again."""
    assert state.outcome is not None
    response: httpx.Response = state.outcome.result()
    return response


def finish(call: Call[T], response: httpx.Response) -> T:
    """The parsed answer of a 2xx, else the matching `OtpError`."""
    if response.is_success:
        try:
            return call.parse(response)
        except ValueError as exc:  # pydantic's ValidationError, invalid JSON
            raise UnexpectedResponseError(
                f"{call.method} {call.path}: unexpected {response.status_code} body: {exc}",
                idempotency_key=call.idempotency_key,
            ) from exc
    raise error_from_response(response, idempotency_key=call.idempotency_key)


def transport_error(call: Call[Any], exc: httpx.TransportError) -> OtpError:
    kind = OtpTimeoutError if isinstance(exc, httpx.TimeoutException) else OtpConnectionError
    where = f"{call.method} {call.path}"
    return kind(f"{where}: {type(exc).__name__}: {exc}", idempotency_key=call.idempotency_key)


def default_headers(api_key: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {api_key}",
        "Accept": "application/json, application/problem+json",
        "User-Agent": USER_AGENT,
    }


# ------------------------------------------------------------------ parsing
def _model(model: type[M]) -> Callable[[httpx.Response], M]:
    return lambda response: model.model_validate_json(response.content)


def _nothing(response: httpx.Response) -> None:
    return None


def _query(**values: object) -> dict[str, str]:
    """Query parameters, without the None ones; datetimes as ISO 8601."""
    out: dict[str, str] = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, datetime):
            out[name] = value.isoformat()
        elif isinstance(value, bool):
            out[name] = "true" if value else "false"
        else:
            out[name] = str(value)
    return out


def _path_id(value: str) -> str:
    if not value or "/" in value or value in (".", ".."):
        raise ValueError(f"not an id: {value!r}")
    return value


def new_idempotency_key() -> str:
    return str(uuid.uuid4())


# -------------------------------------------------------------------- calls
ChannelsArg = Sequence[ChannelStep | str | Mapping[str, Any]]


def _steps(channels: ChannelsArg) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    for item in channels:
        if isinstance(item, str):
            step = ChannelStep(channel=item)
        elif isinstance(item, ChannelStep):
            step = item
        else:
            step = ChannelStep.model_validate(item)
        steps.append(step.model_dump(exclude_none=True))
    return steps


def start_verification(
    to: str,
    *,
    channels: ChannelsArg | None,
    code_length: int | None,
    code_type: str | None,
    ttl_s: int | None,
    max_attempts: int | None,
    locale: str | None,
    brand: str | None,
    client_ref: str | None,
    user_id: str | None,
    user_ip: str | None,
    app_hash: str | None,
    idempotency_key: str | None,
    max_cost: str | None = None,
) -> Call[VerificationCreated]:
    body: dict[str, Any] = {"to": to}
    if channels is not None:
        body["channels"] = _steps(channels)
    optional = {
        "code_length": code_length,
        "code_type": code_type,
        "ttl_s": ttl_s,
        "max_attempts": max_attempts,
        "locale": locale,
        "brand": brand,
        "client_ref": client_ref,
        "user_id": user_id,
        "user_ip": user_ip,
        "app_hash": app_hash,
        "max_cost": max_cost,
    }
    body.update(
        {k: str(v) if k == "code_type" else v for k, v in optional.items() if v is not None}
    )
    return Call(
        "POST",
        "/v1/verifications",
        _model(VerificationCreated),
        Safety.SAFE,
        body=body,
        idempotency_key=idempotency_key or new_idempotency_key(),
    )


def check(verification_id: str, code: str, *, idempotency_key: str | None) -> Call[CheckResult]:
    return Call(
        "POST",
        f"/v1/verifications/{_path_id(verification_id)}/check",
        _model(CheckResult),
        Safety.SAFE,
        body={"code": code},
        idempotency_key=idempotency_key or new_idempotency_key(),
    )


def get(verification_id: str) -> Call[Verification]:
    return Call(
        "GET", f"/v1/verifications/{_path_id(verification_id)}", _model(Verification), Safety.SAFE
    )


def resend(verification_id: str) -> Call[ResendResult]:
    return Call(
        "POST",
        f"/v1/verifications/{_path_id(verification_id)}/resend",
        _model(ResendResult),
        Safety.UNSAFE,
    )


def next_channel(verification_id: str) -> Call[NextChannelResult]:
    return Call(
        "POST",
        f"/v1/verifications/{_path_id(verification_id)}/next-channel",
        _model(NextChannelResult),
        Safety.UNSAFE,
    )


def cancel(verification_id: str) -> Call[CancelResult]:
    return Call(
        "POST",
        f"/v1/verifications/{_path_id(verification_id)}/cancel",
        _model(CancelResult),
        Safety.UNSAFE,
    )


def search(
    *,
    status: str | None,
    channel: str | None,
    country: str | None,
    to: str | None,
    client_ref: str | None,
    created_after: datetime | None,
    created_before: datetime | None,
    limit: int | None,
    cursor: str | None,
) -> Call[VerificationPage]:
    params = _query(
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
    return Call("GET", "/v1/verifications", _model(VerificationPage), Safety.SAFE, params=params)


def events(verification_id: str) -> Call[VerificationEvents]:
    return Call(
        "GET",
        f"/v1/verifications/{_path_id(verification_id)}/events",
        _model(VerificationEvents),
        Safety.SAFE,
    )


def analytics(
    *,
    created_after: datetime | None,
    created_before: datetime | None,
    group_by: Sequence[str] | str | None,
) -> Call[AnalyticsReport]:
    groups = group_by if isinstance(group_by, str) or group_by is None else ",".join(group_by)
    params = _query(created_after=created_after, created_before=created_before, group_by=groups)
    return Call("GET", "/v1/analytics", _model(AnalyticsReport), Safety.SAFE, params=params)


def sandbox_messages(
    *, to: str | None, verification_id: str | None, limit: int | None, wait: float | None
) -> Call[list[SandboxMessage]]:
    return Call(
        "GET",
        "/v1/sandbox/messages",
        lambda r: SandboxMessageList.model_validate_json(r.content).messages,
        Safety.SAFE,
        params=_query(to=to, verification_id=verification_id, limit=limit, wait=wait),
        held_s=wait or 0.0,
    )


def timeout_for(call: Call[Any], timeout: float | httpx.Timeout) -> httpx.Timeout:
    """The client's timeout, with the read timeout stretched by what the call holds."""
    base = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
    read = None if base.read is None else base.read + call.held_s
    return httpx.Timeout(connect=base.connect, read=read, write=base.write, pool=base.pool)


_ENDPOINTS = "/v1/webhook-endpoints"


def create_webhook_endpoint(
    url: str, *, description: str | None, event_types: Sequence[str] | None
) -> Call[WebhookEndpointCreated]:
    body: dict[str, Any] = {"url": url}
    if description is not None:
        body["description"] = description
    if event_types is not None:
        body["event_types"] = [str(t) for t in event_types]
    return Call("POST", _ENDPOINTS, _model(WebhookEndpointCreated), Safety.UNSAFE, body=body)


def list_webhook_endpoints() -> Call[list[WebhookEndpoint]]:
    return Call(
        "GET",
        _ENDPOINTS,
        lambda r: WebhookEndpointList.model_validate_json(r.content).endpoints,
        Safety.SAFE,
    )


def get_webhook_endpoint(endpoint_id: str) -> Call[WebhookEndpoint]:
    return Call(
        "GET", f"{_ENDPOINTS}/{_path_id(endpoint_id)}", _model(WebhookEndpoint), Safety.SAFE
    )


def get_webhook_endpoint_secret(endpoint_id: str) -> Call[str]:
    return Call(
        "GET",
        f"{_ENDPOINTS}/{_path_id(endpoint_id)}/secret",
        lambda r: WebhookEndpointSecret.model_validate_json(r.content).secret,
        Safety.SAFE,
    )


def rotate_webhook_endpoint_secret(
    endpoint_id: str, *, grace_period_s: int | None
) -> Call[WebhookSecretRotated]:
    body: dict[str, Any] = {}
    if grace_period_s is not None:
        body["grace_period_s"] = grace_period_s
    return Call(
        "POST",
        f"{_ENDPOINTS}/{_path_id(endpoint_id)}/secret/rotate",
        _model(WebhookSecretRotated),
        Safety.UNSAFE,
        body=body,
    )


def update_webhook_endpoint(
    endpoint_id: str,
    *,
    url: str | None,
    description: str | None,
    event_types: Sequence[str] | None,
    enabled: bool | None,
) -> Call[WebhookEndpoint]:
    body: dict[str, Any] = {}
    if url is not None:
        body["url"] = url
    if description is not None:
        body["description"] = description
    if event_types is not None:
        body["event_types"] = [str(t) for t in event_types]
    if enabled is not None:
        body["enabled"] = enabled
    # Setting fields to values: sending it twice leaves the same endpoint.
    return Call(
        "PATCH",
        f"{_ENDPOINTS}/{_path_id(endpoint_id)}",
        _model(WebhookEndpoint),
        Safety.SAFE,
        body=body,
    )


def delete_webhook_endpoint(endpoint_id: str) -> Call[None]:
    # Not retried once sent: a repeat after a lost answer would report a 404.
    return Call("DELETE", f"{_ENDPOINTS}/{_path_id(endpoint_id)}", _nothing, Safety.UNSAFE)


def send_webhook_test(endpoint_id: str) -> Call[WebhookTestSent]:
    return Call(
        "POST",
        f"{_ENDPOINTS}/{_path_id(endpoint_id)}/test",
        _model(WebhookTestSent),
        Safety.UNSAFE,
    )


def list_webhook_messages(
    endpoint_id: str, *, verification_id: str | None, limit: int | None
) -> Call[list[WebhookMessage]]:
    return Call(
        "GET",
        f"{_ENDPOINTS}/{_path_id(endpoint_id)}/messages",
        lambda r: WebhookMessageList.model_validate_json(r.content).messages,
        Safety.SAFE,
        params=_query(verification_id=verification_id, limit=limit),
    )


def list_webhook_attempts(endpoint_id: str, message_id: str) -> Call[list[WebhookAttempt]]:
    return Call(
        "GET",
        f"{_ENDPOINTS}/{_path_id(endpoint_id)}/messages/{_path_id(message_id)}/attempts",
        lambda r: WebhookAttemptList.model_validate_json(r.content).attempts,
        Safety.SAFE,
    )
