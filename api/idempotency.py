"""The `Idempotency-Key` request header (IETF draft-ietf-httpapi-idempotency-key-header).

A route decorated with `@idempotent` (under its `@router.post`) and called with the
header answers a retry exactly like the first request, without doing the work twice:

- same key, same body: the first response again (status, body, `Location`), with
  `Idempotent-Replayed: true`; 4xx outcomes are kept and replayed too;
- same key, another body: 422 `idempotency-key-reused`;
- same key while the first request still runs: 409 `idempotency-key-in-flight`,
  `Retry-After: 1`;
- a 5xx or an unexpected error keeps nothing: the key is released for the retry.

Keys are per application, mode and scope (method + route template + path parameters,
so a key on the check of one verification is independent of the same key elsewhere)
and kept `idempotency_ttl_s` (24 h by default). The body fingerprint is an HMAC-SHA-256
of the validated body's canonical JSON, keyed with a server secret: an unkeyed hash of
a 6-digit code or of a phone number could be reversed by trying every value.

The stored response is a second line of defence only: the create route also derives its
workflow id from the key, and the check route sends its update with `check_update_id`,
so even a retry after a lost response (the key released on a 503) counts once.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import inspect
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, ParamSpec, TypeVar, cast

import anyio
from fastapi import BackgroundTasks, Depends, Header, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.datastructures import State
from temporalio.exceptions import TemporalError
from temporalio.service import RPCError

from api.auth import Principal
from api.deps import AuthDep, SecretsDep, SettingsDep, get_store
from api.exception_handlers import render_problem
from api.problems import (
    ApiProblem,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    invalid,
    param_error,
)
from api.temporal_errors import problem_from_temporal
from otp.settings import Secrets, Settings
from otp.store import Store
from otp.store import idempotency as records

logger = logging.getLogger("otp.api")

KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"

# How long a request holds its key before another may take it over (its holder is then
# presumed dead). Longer than a request's own bounds on Temporal; taking over early is
# safe anyway (the same workflow id, the same update id), only wasted work.
LOCK = timedelta(seconds=30)
# Expired keys are deleted at most this often per process, after a response.
PURGE_INTERVAL_S = 3600.0

_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")
_SCOPE_MAX = 160
_UNSTORED_HEADERS = frozenset({"content-length", "content-type", REPLAYED_HEADER.lower()})

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias=KEY_HEADER,
        description=(
            "Makes retries safe (1-255 printable ASCII characters, unique per operation, "
            "e.g. a UUID). The same key with the same body answers the first response "
            "again, status included, with `Idempotent-Replayed: true`, and does the work "
            "once; with a different body it is a 422 problem (`idempotency-key-reused`); "
            "while the first request is still running, a 409 problem "
            "(`idempotency-key-in-flight`, `Retry-After: 1`). Keys are scoped to the API "
            "key's application and mode, this route and the verification, and kept 24 "
            "hours (OTP_IDEMPOTENCY_TTL_S). Failures of the service itself (5xx) are not "
            "kept: retry them with the same key."
        ),
    ),
]

P = ParamSpec("P")
R = TypeVar("R")


def validate_key(key: str) -> str:
    if not _KEY_RE.match(key):
        raise invalid([param_error("header", KEY_HEADER, "1 to 255 printable ASCII characters")])
    return key


def _subkey(secrets: Secrets, purpose: bytes) -> bytes:
    return hmac.new(secrets.code_secret, purpose, hashlib.sha256).digest()


def fingerprint(secrets: Secrets, body: BaseModel | None) -> str:
    """Keyed SHA-256 of the validated body's canonical JSON (key order, spacing irrelevant)."""
    data = body.model_dump(mode="json") if body is not None else None
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    key = _subkey(secrets, b"idempotency-fingerprint")
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def check_update_id(
    secrets: Secrets,
    principal: Principal,
    verification_id: str,
    key: str | None,
    body: BaseModel,
) -> str | None:
    """The Temporal update id of a check sent with an Idempotency-Key (None without one).

    Temporal runs a check once per update id and answers a repeat with the first result,
    so a retry whose first answer was lost is not counted again. The id is keyed (it is
    visible in the workflow's history): it reveals neither the key nor the code.
    """
    if key is None:
        return None
    parts = (principal.application_id, principal.mode.value, verification_id, key)
    material = "\x1f".join((*parts, fingerprint(secrets, body)))
    digest = hmac.new(_subkey(secrets, b"check-update-id"), material.encode(), hashlib.sha256)
    return "chk_" + digest.hexdigest()[:40]


@dataclass(frozen=True)
class _Context:
    request: Request
    response: Response  # the route's sub-response: headers it set (e.g. Location)
    background: BackgroundTasks
    principal: Principal
    secrets: Secrets
    settings: Settings


async def _context(
    request: Request,
    response: Response,
    background: BackgroundTasks,
    principal: AuthDep,
    secrets: SecretsDep,
    settings: SettingsDep,
) -> _Context:
    return _Context(request, response, background, principal, secrets, settings)


def _scope(request: Request) -> tuple[str, int]:
    """`METHOD /route/{template} <path parameters>` and the route's success status."""
    route = request.scope.get("route")
    template = str(getattr(route, "path", request.url.path))
    status_code = getattr(route, "status_code", None) or 200
    resource = " ".join(str(v) for _, v in sorted(request.path_params.items()))
    scope = f"{request.method} {template}"
    if resource:
        scope += " " + resource
    if len(scope) > _SCOPE_MAX:  # an over-long path parameter: its hash stands for it
        scope = f"{request.method} {template} #{hashlib.sha256(resource.encode()).hexdigest()}"
    return scope[:_SCOPE_MAX], status_code


def _envelope(response: Response) -> str:
    headers = {k: v for k, v in response.headers.items() if k.lower() not in _UNSTORED_HEADERS}
    return json.dumps(
        {
            "media_type": response.media_type or response.headers.get("content-type"),
            "headers": headers,
            "body": bytes(response.body).decode(),
        }
    )


def _replay(status_code: int, stored: str) -> Response:
    envelope = json.loads(stored)
    return Response(
        content=envelope["body"],
        status_code=status_code,
        media_type=envelope["media_type"],
        headers={**envelope["headers"], REPLAYED_HEADER: "true"},
    )


def _success(ctx: _Context, result: Any, status_code: int) -> Response:
    if isinstance(result, Response):
        return result
    response = JSONResponse(
        jsonable_encoder(result), status_code=ctx.response.status_code or status_code
    )
    for name, value in ctx.response.headers.items():
        if name.lower() not in ("content-length", "content-type"):
            response.headers.append(name, value)
    return response


def _problem_of(exc: BaseException) -> ApiProblem | None:
    if isinstance(exc, ApiProblem):
        return exc
    if isinstance(exc, TemporalError | RPCError | TimeoutError):
        return problem_from_temporal(exc)
    return None


async def _release(store: Store, claim: records.Claim) -> None:
    try:
        with anyio.CancelScope(shield=True):
            await records.release(store, claim=claim)
    except Exception as exc:  # the lock's expiry frees the key anyway
        logger.warning("idempotency key not released", extra={"error": type(exc).__name__})


async def _keep(ctx: _Context, store: Store, claim: records.Claim, response: Response) -> None:
    try:
        kept = await records.complete(
            store,
            secrets=ctx.secrets,
            claim=claim,
            status_code=response.status_code,
            response=_envelope(response),
        )
    except Exception as exc:  # the answer stands; a retry is deduplicated by Temporal
        logger.warning("idempotent response not stored", extra={"error": type(exc).__name__})
        return
    if not kept:
        logger.warning("idempotency key was taken over before its response was stored")
    _schedule_purge(ctx, store)


def _schedule_purge(ctx: _Context, store: Store) -> None:
    state: State = ctx.request.app.state
    now = time.monotonic()
    last: float | None = getattr(state, "idempotency_purged_at", None)
    if last is not None and now - last < PURGE_INTERVAL_S:
        return
    state.idempotency_purged_at = now
    ctx.background.add_task(purge_expired_keys, store)


async def purge_expired_keys(store: Store) -> int:
    """Delete expired keys; never raises (it runs after a response was sent)."""
    try:
        deleted = await records.purge_expired(store)
    except Exception as exc:
        logger.warning("idempotency purge failed", extra={"error": type(exc).__name__})
        return 0
    if deleted:
        logger.info("expired idempotency keys purged", extra={"deleted": deleted})
    return deleted


async def _run(
    ctx: _Context,
    key: str,
    body: BaseModel | None,
    work: Callable[[], Awaitable[Any]],
) -> Response:
    store = get_store(ctx.request)
    scope, status_code = _scope(ctx.request)
    ref = records.KeyRef(ctx.principal.application_id, ctx.principal.mode.value, scope, key)
    begun = await records.begin(
        store,
        secrets=ctx.secrets,
        ref=ref,
        fingerprint=fingerprint(ctx.secrets, body),
        lock=LOCK,
        ttl=timedelta(seconds=ctx.settings.idempotency_ttl_s),
    )
    if begun.outcome is records.Outcome.MISMATCH:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used with a different request body."
        )
    if begun.outcome is records.Outcome.IN_FLIGHT:
        raise IdempotencyKeyInFlight()
    if begun.outcome is records.Outcome.REPLAY:
        assert begun.status_code is not None and begun.response is not None
        return _replay(begun.status_code, begun.response)
    claim = begun.claim
    assert claim is not None
    try:
        result = await work()
    except BaseException as exc:
        problem = _problem_of(exc)
        if problem is None or problem.status >= 500:
            await _release(store, claim)
            raise
        # A client error is the request's outcome (IETF): kept and replayed as it was.
        response: Response = render_problem(ctx.request, problem)
    else:
        response = _success(ctx, result, status_code)
        if response.status_code >= 500 or not hasattr(response, "body"):
            await _release(store, claim)
            return response
    await _keep(ctx, store, claim, response)
    return response


def idempotent(endpoint: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R | Response]]:
    """Give a route Idempotency-Key semantics (place it under `@router.post(...)`).

    The route's validated body is its parameter named `body`. Requests without the
    header run the route unchanged.
    """
    signature = inspect.signature(endpoint, eval_str=True)
    extra = inspect.Parameter(
        "_idempotency",
        inspect.Parameter.KEYWORD_ONLY,
        annotation=Annotated[_Context, Depends(_context)],
    )

    @functools.wraps(endpoint)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | Response:
        ctx = cast(_Context, kwargs.pop("_idempotency"))
        key = ctx.request.headers.get(KEY_HEADER)
        if key is None:
            return await endpoint(*args, **kwargs)
        body = kwargs.get("body")
        return await _run(
            ctx,
            validate_key(key),
            body if isinstance(body, BaseModel) else None,
            lambda: endpoint(*args, **kwargs),
        )

    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), extra]
    )
    return wrapper
