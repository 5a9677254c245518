"""/v1/verifications: start, check, read, resend, fall back to the next channel, cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status

from api.deps import (
    AuthDep,
    LimiterDep,
    RecorderDep,
    RiskCachesDep,
    SecretsDep,
    ServiceDep,
    SettingsDep,
    StoreDep,
)
from api.idempotency import IdempotencyKeyHeader, idempotent
from api.schemas.problem import problem_responses
from api.schemas.verifications import (
    CancelResponse,
    CheckRequest,
    CheckResponse,
    DeliveryPublic,
    NextChannelResponse,
    ResendResponse,
    VerificationCreate,
    VerificationCreated,
    VerificationPublic,
)
from api.services.verifications import Verifications

router = APIRouter(prefix="/v1/verifications", tags=["verifications"])

VerificationId = Annotated[
    str,
    Path(
        description="The verification id returned by `POST /v1/verifications`.",
        examples=["ver_k5xwq2m3b7c4d5e6f7g2h3j4kq"],
    ),
]


async def get_verifications(
    principal: AuthDep,
    workflows: ServiceDep,
    store: StoreDep,
    limiter: LimiterDep,
    secrets: SecretsDep,
    settings: SettingsDep,
    recorder: RecorderDep,
    caches: RiskCachesDep,
) -> Verifications:
    """The caller's verification operations."""
    return Verifications(
        principal=principal,
        workflows=workflows,
        store=store,
        limiter=limiter,
        secrets=secrets,
        settings=settings,
        recorder=recorder,
        caches=caches,
    )


VerificationsDep = Annotated[Verifications, Depends(get_verifications)]


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
    response: Response,
    verifications: VerificationsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> VerificationCreated:
    """Issue a code and deliver it along the channel plan (with timed fallback).

    Answers once the verification is durably started. Test keys deliver to the
    sandbox inbox (`GET /v1/sandbox/messages`); live keys deliver for real.
    """
    created = await verifications.create(body, idempotency_key=idempotency_key)
    response.headers.update(created.headers)
    response.headers["Location"] = f"{router.prefix}/{created.id}"
    if created.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return VerificationCreated.of(created.id, created.input)


@router.get(
    "/{verification_id}",
    response_model=VerificationPublic,
    summary="Read a verification",
    responses=problem_responses(401, 404, 503),
)
async def get_verification(
    verification_id: VerificationId, verifications: VerificationsDep
) -> VerificationPublic:
    """Status, plan, every delivery attempt, attempts used and the terminal reason.

    Finished verifications stay readable from the store after Temporal's own retention.
    """
    return VerificationPublic.of(verification_id, await verifications.read(verification_id))


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
    verifications: VerificationsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> CheckResponse:
    """Compare a submitted code. A wrong code is a normal answer (`valid: false`).

    Once the verification is finished (approved, expired, out of attempts, canceled,
    undeliverable) every check is a 409 problem naming its status in
    `status_of_verification`.
    """
    result = await verifications.check(verification_id, body, idempotency_key=idempotency_key)
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
    verification_id: VerificationId, verifications: VerificationsDep
) -> ResendResponse:
    """Deliver the same code again on the current channel.

    429 with `Retry-After` inside the resend cooldown or when a send limit of the
    application (per destination, prefix, country, spend) is full, 429 without it once no
    sends are left, 403 when a risk block refuses the destination, 502 if this delivery
    failed. A refused resend leaves the verification pending with the same code.
    """
    result = await verifications.resend(verification_id)
    return ResendResponse(
        id=verification_id,
        delivery=DeliveryPublic.of(result.delivery),
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
    verification_id: VerificationId, verifications: VerificationsDep
) -> NextChannelResponse:
    """Move to the next step of the plan without waiting for the current step's timeout."""
    result = await verifications.next_channel(verification_id)
    return NextChannelResponse(
        id=verification_id,
        step_index=result.step_index,
        delivery=DeliveryPublic.of(result.delivery),
    )


@router.post(
    "/{verification_id}/cancel",
    response_model=CancelResponse,
    summary="Cancel a verification",
    responses=problem_responses(401, 404, 409, 503),
)
async def cancel_verification(
    verification_id: VerificationId, verifications: VerificationsDep
) -> CancelResponse:
    """End the verification now; later checks answer 409 `canceled`."""
    result = await verifications.cancel(verification_id)
    return CancelResponse(id=verification_id, status=result.status)
