"""/v1/verifications: start, check, read, resend, fall back to the next channel, cancel."""

from __future__ import annotations

import logging
import re
import time
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status
from sqlmodel import col, select
from temporalio.exceptions import TemporalError
from temporalio.service import RPCError

from api.auth import Principal
from api.deps import AuthDep, LimiterDep, SecretsDep, ServiceDep, SettingsDep, StoreDep
from api.errors import (
    ApiProblem,
    ChannelNotAllowed,
    DeliveryFailed,
    RateLimited,
    RiskPolicyRefused,
    VerificationFinished,
    VerificationNotFound,
    field_error,
    invalid,
    param_error,
)
from api.idempotency import IdempotencyKeyHeader, check_update_id, idempotent
from api.lockouts import record_lockouts, safe_hashes
from api.recording import record_check, record_created
from api.schemas import (
    DEFAULT_MAX_SENDS,
    DEFAULT_RESEND_COOLDOWN_S,
    VERIFICATION_ID_RE,
    CancelResponse,
    ChannelStepCreate,
    ChannelStepPublic,
    CheckRequest,
    CheckResponse,
    DeliveryPublic,
    NextChannelResponse,
    ResendResponse,
    VerificationCreate,
    VerificationCreated,
    VerificationPublic,
    problem_responses,
)
from api.service import VerificationService, idempotent_verification_id, now_utc
from otp.domain import (
    Channel,
    ChannelStep,
    DeliveryAttempt,
    DeliveryStatus,
    Mode,
    Status,
    VerificationInput,
    VerificationState,
)
from otp.domain.destinations import (
    InvalidDestinationError,
    looks_like_email,
    mask,
    number_prefix,
    parse_destination,
    parse_phone,
    range_hash,
)
from otp.observability import metrics
from otp.observability.logs import bind
from otp.risk import policy as risk
from otp.security.codes import code_digest
from otp.settings import Settings
from otp.store import Store, VerificationDestination, VerificationRecord, utcnow
from otp.store import records as store_records
from otp.store.risk_blocks import covers, is_active, list_active_blocks
from otp.store.tables import RiskBlock
from providers.channels import live_plan

logger = logging.getLogger("otp.api")

router = APIRouter(prefix="/v1/verifications", tags=["verifications"])


_IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")

VerificationId = Annotated[
    str,
    Path(
        description="The verification id returned by `POST /v1/verifications`.",
        examples=["ver_k5xwq2m3b7c4d5e6f7g2h3j4kq"],
    ),
]


# Blocks in force per (application, mode), re-read at most this often: creates do not
# query the store for them one by one (the delivery gate checks again before any send).
_BLOCKS_CACHE_S = 5.0


async def _active_blocks(request: Request, store: Store, principal: Principal) -> list[RiskBlock]:
    cache: dict[tuple[str, str], tuple[float, list[RiskBlock]]] = (
        request.app.state.__dict__.setdefault("risk_blocks_cache", {})
    )
    scope = (principal.application_id, principal.mode.value)
    now = time.monotonic()
    cached = cache.get(scope)
    if cached is not None and now - cached[0] < _BLOCKS_CACHE_S:
        return cached[1]
    blocks = await list_active_blocks(store, application_id=scope[0], mode=scope[1])
    cache[scope] = (now, blocks)
    return blocks


async def _blocked_step(
    request: Request,
    store: Store,
    principal: Principal,
    steps: list[ChannelStep],
    code_secret: bytes,
    *,
    safe_listed: bool = False,
) -> int | None:
    """The first phone step whose country or number range a risk block refuses (a block
    set by conversion monitoring or an operator), checked before the limits are charged.
    A safe-listed create skips automatic (conversion monitoring) blocks, not manual ones."""
    blocks = await _active_blocks(request, store, principal)
    if safe_listed:
        blocks = [block for block in blocks if not block.automatic]
    if not blocks:
        return None
    now = utcnow()
    for index, step in enumerate(steps):
        if not step.channel.is_phone:
            continue
        country, prefix = parse_phone(step.to).country, number_prefix(step.to)
        prefix_hash = range_hash(code_secret, prefix) if prefix else None
        if any(
            is_active(block, now)
            and covers(block, country=country, prefix=prefix, prefix_hash=prefix_hash)
            for block in blocks
        ):
            return index
    return None


def _require_id(verification_id: str) -> str:
    """Malformed ids are unknown ids: answered 404 without asking Temporal."""
    if not VERIFICATION_ID_RE.match(verification_id):
        raise VerificationNotFound()
    bind(verification_id=verification_id)
    return verification_id


_APP_DEFAULT_FIELDS = ("code_length", "code_type", "ttl_s", "max_attempts", "locale")


def _with_app_defaults(body: VerificationCreate, principal: Principal) -> VerificationCreate:
    """Fill the fields the request left out from its application's defaults."""
    defaults = principal.defaults
    update: dict[str, object] = {
        name: getattr(defaults, name)
        for name in _APP_DEFAULT_FIELDS
        if name not in body.model_fields_set and getattr(defaults, name) is not None
    }
    if body.brand is None and principal.brand:
        update["brand"] = principal.brand
    return body.model_copy(update=update) if update else body


def _plan(
    body: VerificationCreate, principal: Principal, settings: Settings
) -> tuple[list[ChannelStep], str | None]:
    """Validate every destination for its channel; the plan and the first phone's country."""
    errors: list[dict[str, str]] = []
    default_channel = Channel.EMAIL if looks_like_email(body.to) else Channel.SMS
    try:
        top = parse_destination(body.to, default_channel).value
    except InvalidDestinationError as exc:
        errors.append(field_error("#/to", str(exc), "invalid_destination"))
        top = None
    # Left out: the application's default plan (its steps that fit `to`), else one step.
    requested = (
        body.channels
        or [
            ChannelStepCreate(channel=s.channel, timeout_s=s.timeout_s)
            for s in principal.defaults.plan_for(email=default_channel is Channel.EMAIL)
        ]
        or [ChannelStepCreate(channel=default_channel)]
    )
    refused = [s.channel.value for s in requested if not principal.allows(s.channel)]
    if refused:
        raise ChannelNotAllowed(
            list(dict.fromkeys(refused)), sorted(c.value for c in principal.allowed_channels)
        )
    # Live keys may plan only channels with a configured provider (each step then fails
    # over across that channel's providers, in the configured order); test keys use the
    # sandbox for every channel.
    live = live_plan(settings) if principal.mode is Mode.LIVE else {}
    steps: list[ChannelStep] = []
    country: str | None = None
    for index, step in enumerate(requested):
        if principal.mode is Mode.LIVE and step.channel not in live:
            errors.append(
                field_error(
                    f"#/channels/{index}/channel",
                    f"channel not available in live mode: {step.channel.value} has no live "
                    "provider yet (available: "
                    + (", ".join(sorted(c.value for c in live)) or "none")
                    + ")",
                    "channel_unavailable",
                )
            )
        if step.to is None:
            if top is None:
                continue  # already reported on #/to
            raw, pointer = body.to, "#/to"
        else:
            raw, pointer = step.to, f"#/channels/{index}/to"
        try:
            destination = parse_destination(raw, step.channel)
        except InvalidDestinationError as exc:
            errors.append(
                field_error(
                    pointer,
                    f"invalid destination for {step.channel.value}: {exc}",
                    "invalid_destination",
                )
            )
            continue
        if country is None and step.channel.is_phone:
            country = destination.country
        steps.append(
            ChannelStep(
                channel=step.channel,
                to=destination.value,
                timeout_s=step.timeout_s,
                providers=live.get(step.channel, []),
            )
        )
    if errors:
        raise invalid(errors)
    return steps, country


def _steps_public(steps: list[ChannelStep]) -> list[ChannelStepPublic]:
    return [
        ChannelStepPublic(channel=s.channel, to=mask(s.to), timeout_s=s.timeout_s) for s in steps
    ]


def _created(verification_id: str, input: VerificationInput) -> VerificationCreated:
    created_at = input.created_at or now_utc()
    return VerificationCreated(
        id=verification_id,
        status=Status.PENDING,
        mode=input.mode,
        to=mask(input.channels[0].to),
        channels=_steps_public(input.channels),
        code_length=input.code_length,
        code_type=input.code_type,
        locale=input.locale,
        max_attempts=input.max_attempts,
        attempts_remaining=input.max_attempts,
        created_at=created_at,
        expires_at=created_at + timedelta(seconds=input.ttl_s),
        client_ref=input.client_ref,
    )


def _delivery(attempt: DeliveryAttempt) -> DeliveryPublic:
    return DeliveryPublic(
        step_index=attempt.step_index,
        kind=attempt.kind,
        channel=attempt.channel,
        provider=attempt.provider,
        status=attempt.status,
        error_type=attempt.error_type,
        started_at=attempt.started_at,
        updated_at=attempt.updated_at,
    )


def _public(verification_id: str, state: VerificationState) -> VerificationPublic:
    return VerificationPublic(
        id=verification_id,
        status=state.status,
        reason=state.reason,
        mode=state.mode,
        to=mask(state.channels[0].to) if state.channels else "",
        channels=_steps_public(state.channels),
        current_step=state.current_step,
        deliveries=[_delivery(d) for d in state.deliveries],
        attempts_used=state.attempts_used,
        attempts_remaining=state.attempts_remaining,
        max_attempts=state.max_attempts,
        sends=state.sends,
        max_sends=state.max_sends,
        next_resend_at=state.next_resend_at,
        created_at=state.created_at,
        expires_at=state.expires_at,
        finished_at=state.finished_at,
        client_ref=state.client_ref,
        locale=state.locale,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=VerificationCreated,
    summary="Start a verification",
    responses=problem_responses(401, 403, 409, 422, 429, 503),
)
@idempotent
async def create_verification(
    body: VerificationCreate,
    request: Request,
    response: Response,
    principal: AuthDep,
    service: ServiceDep,
    settings: SettingsDep,
    secrets: SecretsDep,
    limiter: LimiterDep,
    store: StoreDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> VerificationCreated:
    """Issue a code and deliver it along the channel plan (with timed fallback).

    Answers once the verification is durably started. Test keys deliver to the
    sandbox inbox (`GET /v1/sandbox/messages`); live keys deliver for real.
    """
    if idempotency_key is not None and not _IDEMPOTENCY_KEY_RE.match(idempotency_key):
        raise invalid(
            [param_error("header", "Idempotency-Key", "1 to 255 printable ASCII characters")]
        )
    body = _with_app_defaults(body, principal)
    steps, country = _plan(body, principal, settings)
    safe_listed = risk.is_safe_listed(
        await safe_hashes(request, store, principal),
        risk.destination_hashes(secrets.code_secret, steps),
    )
    blocked_step = await _blocked_step(
        request, store, principal, steps, secrets.code_secret, safe_listed=safe_listed
    )
    if blocked_step is not None:
        logger.info("create refused by a risk block", extra={"step_index": blocked_step})
        raise RiskPolicyRefused(risk.RefusalReason.SCOPE_BLOCKED.value, step_index=blocked_step)
    # Risk gates, before any workflow starts (so a refused create never reaches a
    # provider). The IP limit counts the end user's address, which the caller passes:
    # the connection's address is the caller's own backend.
    gate = await risk.gate_create(
        limiter,
        principal.risk,
        secret=secrets.code_secret,
        application_id=principal.application_id,
        mode=principal.mode,
        steps=steps,
        client_ip=str(body.user_ip) if body.user_ip is not None else None,
        user_id=body.user_id,
        member=(
            idempotent_verification_id(principal, idempotency_key)
            if idempotency_key is not None
            else None
        ),
        safe_listed=safe_listed,
    )
    if gate.refusal is not None:
        logger.info("create refused by risk policy", extra={"reason": gate.refusal.reason.value})
        raise RiskPolicyRefused(gate.refusal.reason.value, step_index=gate.refusal.step_index)
    if gate.refused:
        logger.info("create rate limited", extra={"limit": gate.refused[0].limit.name})
        raise RateLimited(
            gate.refused[0].limit.name,
            risk.retry_after_s(gate.refused),
            risk.ratelimit_headers(gate.refused),
        )
    if gate.tightest is not None:
        response.headers.update(risk.ratelimit_headers([gate.tightest]))
    input = VerificationInput(
        application_id=principal.application_id,
        mode=principal.mode,
        channels=steps,
        code_length=body.code_length,
        code_type=body.code_type,
        ttl_s=body.ttl_s,
        max_attempts=body.max_attempts,
        max_sends=DEFAULT_MAX_SENDS,
        resend_cooldown_s=DEFAULT_RESEND_COOLDOWN_S,
        resend_backoff=principal.risk.resend_backoff,
        locale=body.locale,
        brand=body.brand or "",
        client_ref=body.client_ref,
        country=country,
        created_at=now_utc(),
        provider_max_attempts=settings.provider_max_attempts,
        web_domain=principal.defaults.web_domain or settings.webotp_domain,
        app_hash=body.app_hash,
    )
    started = await service.start(input, principal, idempotency_key=idempotency_key)
    if not started.replayed:
        metrics.count_started(steps[0].channel.value, country, principal.mode)
        await record_created(request, started.id, started.input)
    response.headers["Location"] = f"{router.prefix}/{started.id}"
    if started.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    logger.info(
        "verification %s",
        "replayed" if started.replayed else "started",
        extra={
            "verification_id": started.id,
            "mode": principal.mode.value,
            "channel": steps[0].channel.value,
            "to": mask(steps[0].to),
            "steps": len(steps),
        },
    )
    return _created(started.id, started.input)


@router.get(
    "/{verification_id}",
    response_model=VerificationPublic,
    summary="Read a verification",
    responses=problem_responses(401, 404, 503),
)
async def get_verification(
    verification_id: VerificationId, principal: AuthDep, service: ServiceDep, store: StoreDep
) -> VerificationPublic:
    """Status, plan, every delivery attempt, attempts used and the terminal reason.

    Finished verifications stay readable from the store after Temporal's own retention.
    """
    try:
        state = await service.state(_require_id(verification_id), principal)
    except VerificationNotFound:
        recorded = await _recorded_state(store, verification_id, principal)
        if recorded is None:
            raise
        state = recorded
    return _public(verification_id, state)


async def _recorded_state(
    store: Store, verification_id: str, principal: Principal
) -> VerificationState | None:
    """The final state the store kept of a verification Temporal no longer holds."""
    record = await store_records.get_record(
        store,
        verification_id=verification_id,
        application_id=principal.application_id,
        mode=principal.mode.value,
    )
    if record is None or not record.final or not record.snapshot:
        return None
    return VerificationState.model_validate(record.snapshot)


async def _destination_hashes(
    store: Store,
    service: VerificationService,
    verification_id: str,
    principal: Principal,
    code_secret: bytes,
) -> list[str]:
    """The keyed hashes of a verification's destinations (its failed-check counters):
    the rows the event log wrote with the create (one indexed query, scoped to the
    caller); when that best-effort write was lost, the workflow's state."""
    query = (
        select(VerificationDestination.destination_hash)
        .join(
            VerificationRecord,
            col(VerificationRecord.id) == col(VerificationDestination.verification_id),
        )
        .where(
            col(VerificationDestination.verification_id) == verification_id,
            col(VerificationRecord.application_id) == principal.application_id,
            col(VerificationRecord.mode) == principal.mode.value,
        )
    )
    async with store.session() as session:
        hashes = sorted((await session.exec(query)).all())
    if hashes:
        return hashes
    try:
        state = await service.state(verification_id, principal)
    except (ApiProblem, TemporalError, RPCError, TimeoutError):
        return []  # unknown or finished: the check itself answers
    return risk.destination_hashes(code_secret, state.channels)


async def _plan_of(
    service: VerificationService, verification_id: str, principal: Principal
) -> list[ChannelStep]:
    """The plan of a verification (to mask a destination that was just locked out)."""
    try:
        return list((await service.state(verification_id, principal)).channels)
    except (ApiProblem, TemporalError, RPCError, TimeoutError):
        return []


@router.post(
    "/{verification_id}/check",
    response_model=CheckResponse,
    summary="Check a code",
    responses=problem_responses(401, 403, 404, 409, 422, 503),
)
@idempotent
async def check_verification(
    verification_id: VerificationId,
    body: CheckRequest,
    request: Request,
    principal: AuthDep,
    service: ServiceDep,
    secrets: SecretsDep,
    store: StoreDep,
    limiter: LimiterDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> CheckResponse:
    """Compare a submitted code. A wrong code is a normal answer (`valid: false`).

    Once the verification is finished (approved, expired, out of attempts, canceled,
    undeliverable) every check is a 409 problem naming its status in
    `status_of_verification`.
    """
    _require_id(verification_id)
    digest = code_digest(secrets.code_secret, verification_id, body.code)
    update_id = check_update_id(secrets, principal, verification_id, idempotency_key, body)
    hashes = await _destination_hashes(
        store, service, verification_id, principal, secrets.code_secret
    )
    counters = risk.failed_check_keys(principal.application_id, principal.mode, hashes)
    if await risk.failed_checks_reached(limiter, principal.risk, counters):
        logger.info(
            "check refused: failed checks exceeded", extra={"verification_id": verification_id}
        )
        metrics.count_check("refused")
        raise RiskPolicyRefused(risk.RefusalReason.FAILED_CHECKS_EXCEEDED.value)
    try:
        result = await service.check(verification_id, principal, digest=digest, update_id=update_id)
    except VerificationNotFound:
        # Past Temporal's retention the store still knows how it ended: say why.
        state = await _recorded_state(store, verification_id, principal)
        if state is None or not state.status.is_terminal:
            raise
        raise VerificationFinished(state.status.value, state.reason) from None
    logger.info(
        "code checked",
        extra={
            "verification_id": verification_id,
            "valid": result.valid,
            "status": result.status.value,
            "attempts_remaining": result.attempts_remaining,
        },
    )
    metrics.count_check("approved" if result.valid else "incorrect")
    if result.valid or result.attempts_used > 0:  # an approval, or a wrong code counted
        reached = await risk.note_check(
            limiter, counters, approved=result.valid, risk=principal.risk
        )
        if reached:
            await record_lockouts(
                request,
                store,
                principal,
                verification_id,
                reached=reached,
                counters=counters,
                hashes=hashes,
                steps=await _plan_of(service, verification_id, principal),
                code_secret=secrets.code_secret,
            )
    await record_check(
        request,
        verification_id,
        result,
        application_id=principal.application_id,
        mode=principal.mode,
    )
    return CheckResponse(
        id=verification_id,
        status=result.status,
        valid=result.valid,
        attempts_remaining=result.attempts_remaining,
    )


@router.post(
    "/{verification_id}/resend",
    response_model=ResendResponse,
    summary="Send the same code again",
    responses=problem_responses(401, 403, 404, 409, 429, 502, 503),
)
async def resend_verification(
    verification_id: VerificationId, principal: AuthDep, service: ServiceDep
) -> ResendResponse:
    """Deliver the same code again on the current channel.

    429 with `Retry-After` inside the resend cooldown or when a send limit of the
    application (per destination, prefix, country, spend) is full, 429 without it once no
    sends are left, 403 when a risk block refuses the destination, 502 if this delivery
    failed. A refused resend leaves the verification pending with the same code.
    """
    result = await service.resend(_require_id(verification_id), principal)
    delivery = _delivery(result.delivery)
    logger.info(
        "code resent",
        extra={
            "verification_id": verification_id,
            "channel": delivery.channel.value,
            "delivery_status": delivery.status.value,
        },
    )
    if result.delivery.status is DeliveryStatus.FAILED:
        raise DeliveryFailed(
            "The resend could not be delivered.",
            error_type=result.delivery.error_type,
            delivery=delivery.model_dump(mode="json"),
            sends_remaining=result.sends_remaining,
        )
    return ResendResponse(
        id=verification_id,
        delivery=delivery,
        sends_remaining=result.sends_remaining,
        next_resend_at=result.next_resend_at,
    )


@router.post(
    "/{verification_id}/next-channel",
    response_model=NextChannelResponse,
    summary="Fall back to the next channel now",
    responses=problem_responses(401, 404, 409, 503),
)
async def next_channel(
    verification_id: VerificationId, principal: AuthDep, service: ServiceDep
) -> NextChannelResponse:
    """Move to the next step of the plan without waiting for the current step's timeout."""
    result = await service.next_channel(_require_id(verification_id), principal)
    logger.info(
        "moved to next channel",
        extra={
            "verification_id": verification_id,
            "step_index": result.step_index,
            "channel": result.delivery.channel.value,
            "delivery_status": result.delivery.status.value,
        },
    )
    return NextChannelResponse(
        id=verification_id, step_index=result.step_index, delivery=_delivery(result.delivery)
    )


@router.post(
    "/{verification_id}/cancel",
    response_model=CancelResponse,
    summary="Cancel a verification",
    responses=problem_responses(401, 404, 409, 503),
)
async def cancel_verification(
    verification_id: VerificationId, principal: AuthDep, service: ServiceDep
) -> CancelResponse:
    """End the verification now; later checks answer 409 `canceled`."""
    result = await service.cancel(_require_id(verification_id), principal)
    logger.info("verification canceled", extra={"verification_id": verification_id})
    return CancelResponse(id=verification_id, status=result.status)
