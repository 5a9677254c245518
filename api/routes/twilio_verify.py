"""/v2/Services: the Twilio Verify v2 compatible API (thin handlers over `api.services.twilio_verify`).

HTTP Basic auth as the `twilio` SDKs send it: the username is the API key's id (`key_...`)
or its application's id, the password the API key; the key's mode (test or live) applies.
Bodies are Twilio's form posts; every error, whatever raised it, is answered as Twilio's
JSON error by `TwilioRoute`.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import BaseModel, ValidationError
from temporalio.exceptions import TemporalError
from temporalio.service import RPCError

from api.auth import Principal, StoreUnavailableError
from api.deps import (
    AuthenticatorDep,
    LimiterDep,
    RecorderDep,
    RiskCachesDep,
    SecretsDep,
    ServiceDep,
    SettingsDep,
    StoreDep,
)
from api.exception_handlers import log_unexpected
from api.problems import ApiProblem, PayloadTooLarge, ServiceUnavailable, Unauthorized
from api.schemas.twilio_verify import (
    PageMeta,
    ServiceCreateForm,
    ServiceUpdateForm,
    TwilioAttempt,
    TwilioAttemptPage,
    TwilioAttemptsSummary,
    TwilioChannel,
    TwilioError,
    TwilioService,
    TwilioServicePage,
    TwilioVerification,
    TwilioVerificationCheck,
    VerificationCheckForm,
    VerificationCreateForm,
    VerificationUpdateForm,
)
from api.services.twilio_verify import (
    AttemptQuery,
    TwilioApiError,
    TwilioVerify,
    Urls,
    from_validation,
    invalid_parameter,
    twilio_error_of,
)
from api.services.verifications import Verifications
from api.temporal_errors import problem_from_temporal
from otp.observability.logs import bind

F = TypeVar("F", bound=BaseModel)
FORM_MAX_BODY = 64 * 1024
MAX_PAGE_SIZE = 1000


def twilio_error_response(request: Request, exc: Exception) -> JSONResponse:
    """Any failure as Twilio's error JSON."""
    if isinstance(exc, TwilioApiError):
        error = exc
    elif isinstance(exc, ApiProblem):
        error = twilio_error_of(exc)
    elif isinstance(exc, RequestValidationError):
        error = from_validation(exc.errors())
    elif isinstance(exc, (TemporalError, RPCError, TimeoutError)):
        error = twilio_error_of(problem_from_temporal(exc))
    else:
        log_unexpected(request, exc)
        error = TwilioApiError(500, 20500, "An unexpected error occurred")
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


class TwilioRoute(APIRoute):
    """A route whose errors are Twilio's JSON, not the API's problem documents."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                response = await handler(request)
            except Exception as exc:
                response = twilio_error_response(request, exc)
            # Verification state must never sit in a shared cache.
            response.headers.setdefault("Cache-Control", "no-store")
            return response

        return route


router = APIRouter(prefix="/v2/Services", tags=["twilio-verify-v2"], route_class=TwilioRoute)

_basic = HTTPBasic(
    auto_error=False,
    scheme_name="TwilioBasic",
    description="Username: the API key's id (`key_...`) or its application's id; "
    "password: the API key.",
)


async def twilio_principal(
    request: Request,
    credentials: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
    authenticator: AuthenticatorDep,
    store: StoreDep,
) -> Principal:
    """The caller of a Basic-authenticated request (one 20003 for every refusal)."""
    try:
        principal = await authenticator.resolve(
            credentials.password if credentials else None, store
        )
    except StoreUnavailableError:
        raise ServiceUnavailable("The store did not answer; retry shortly.") from None
    username = credentials.username.encode() if credentials else b""
    names = [principal.application_id, principal.key_id or ""] if principal else []
    if principal is None or not any(
        [hmac.compare_digest(username, name.encode()) for name in names if name]
    ):
        raise Unauthorized()
    request.state.principal = principal
    bind(application_id=principal.application_id, mode=principal.mode.value)
    return principal


async def get_twilio_verify(
    request: Request,
    principal: Annotated[Principal, Depends(twilio_principal)],
    workflows: ServiceDep,
    store: StoreDep,
    limiter: LimiterDep,
    secrets: SecretsDep,
    settings: SettingsDep,
    recorder: RecorderDep,
    caches: RiskCachesDep,
) -> TwilioVerify:
    verifications = Verifications(
        principal=principal,
        workflows=workflows,
        store=store,
        limiter=limiter,
        secrets=secrets,
        settings=settings,
        recorder=recorder,
        caches=caches,
    )
    base = (settings.public_url or str(request.base_url)).rstrip("/")
    return TwilioVerify(verifications, Urls(base))


TwilioDep = Annotated[TwilioVerify, Depends(get_twilio_verify)]


def form(model: type[F]) -> Callable[[Request], Awaitable[F]]:
    """A dependency reading a form post into `model` (by Twilio's parameter names)."""

    async def read(request: Request) -> F:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > FORM_MAX_BODY:
            raise PayloadTooLarge(FORM_MAX_BODY)
        body = await request.body()
        if len(body) > FORM_MAX_BODY:
            raise PayloadTooLarge(FORM_MAX_BODY)
        values: dict[str, str] = {}
        for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
            values[name] = value  # a repeated parameter: the last one
        try:
            return model.model_validate(values)
        except ValidationError as exc:
            raise from_validation(exc.errors()) from None

    return read


def _form_body(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI for a form post read by `form(model)`."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": model.model_json_schema(by_alias=True)
                }
            },
        }
    }


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    described = {
        400: "Invalid parameter (60200) or unsupported parameter",
        401: "Missing or invalid credentials (20003)",
        404: "No such service or verification (20404); `otp_status` / `otp_reason` say "
        "why a verification ended",
        413: "Body too large",
        429: "Max check attempts (60202) or max send attempts (60203)",
        503: "Temporal or the store did not answer (20503)",
    }
    out: dict[int | str, dict[str, Any]] = {
        code: {"model": TwilioError, "description": described[code]} for code in codes
    }
    out["default"] = {"model": TwilioError, "description": "A Twilio error"}
    return out


def _page_meta(base: str, key: str, page: int, page_size: int, more: bool) -> PageMeta:
    """Twilio's `meta`: absolute page URLs, `next_page_url` only when a page follows."""

    def url(number: int) -> str:
        return f"{base}?{urlencode({'PageSize': page_size, 'Page': number})}"

    return PageMeta(
        page=page,
        page_size=page_size,
        first_page_url=url(0),
        previous_page_url=url(page - 1) if page > 0 else None,
        url=url(page),
        next_page_url=url(page + 1) if more else None,
        key=key,
    )


ServiceSid = Annotated[str, Path(description="The service's sid (`VA...`).", max_length=34)]
VerificationSid = Annotated[
    str, Path(description="The verification's sid (`VE...`).", max_length=34)
]


# -------------------------------------------------------------------- services
@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TwilioService,
    summary="Create a Verify service",
    responses=_errors(400, 401, 413, 503),
    openapi_extra=_form_body(ServiceCreateForm),
)
async def create_service(
    twilio: TwilioDep, body: Annotated[ServiceCreateForm, Depends(form(ServiceCreateForm))]
) -> TwilioService:
    """A service of the caller's application: friendly name, code length and flags."""
    return await twilio.create_service(body)


@router.get(
    "",
    response_model=TwilioServicePage,
    summary="List Verify services",
    responses=_errors(400, 401, 503),
)
async def list_services(
    twilio: TwilioDep,
    page_size: Annotated[int, Query(alias="PageSize", ge=1, le=MAX_PAGE_SIZE)] = 50,
    page: Annotated[int, Query(alias="Page", ge=0, le=100_000)] = 0,
    page_token: Annotated[str | None, Query(alias="PageToken", max_length=128)] = None,
) -> TwilioServicePage:
    """The application's services, oldest first, paged as Twilio pages (`meta`)."""
    services, more = await twilio.list_services(page=page, page_size=page_size)
    meta = _page_meta(twilio.urls.services(), "services", page, page_size, more)
    return TwilioServicePage(services=services, meta=meta)


@router.get(
    "/{service_sid}",
    response_model=TwilioService,
    summary="Fetch a Verify service",
    responses=_errors(401, 404, 503),
)
async def fetch_service(service_sid: ServiceSid, twilio: TwilioDep) -> TwilioService:
    return await twilio.fetch_service(service_sid)


@router.post(
    "/{service_sid}",
    response_model=TwilioService,
    summary="Update a Verify service",
    responses=_errors(400, 401, 404, 413, 503),
    openapi_extra=_form_body(ServiceUpdateForm),
)
async def update_service(
    service_sid: ServiceSid,
    twilio: TwilioDep,
    body: Annotated[ServiceUpdateForm, Depends(form(ServiceUpdateForm))],
) -> TwilioService:
    return await twilio.update_service(service_sid, body)


@router.delete(
    "/{service_sid}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a Verify service",
    responses=_errors(401, 404, 503),
)
async def delete_service(service_sid: ServiceSid, twilio: TwilioDep) -> Response:
    """The service goes; its verifications stay readable through `/v1`."""
    await twilio.delete_service(service_sid)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --------------------------------------------------------------- verifications
@router.post(
    "/{service_sid}/Verifications",
    status_code=status.HTTP_201_CREATED,
    response_model=TwilioVerification,
    summary="Start a verification (Twilio Verify v2)",
    responses=_errors(400, 401, 404, 413, 429, 503),
    openapi_extra=_form_body(VerificationCreateForm),
)
async def create_verification(
    service_sid: ServiceSid,
    twilio: TwilioDep,
    body: Annotated[VerificationCreateForm, Depends(form(VerificationCreateForm))],
) -> TwilioVerification:
    """Send a code to `To` on `Channel`. A pending verification of the same destination
    on this service is answered again (same sid), its code sent again."""
    return await twilio.create_verification(service_sid, body)


@router.get(
    "/{service_sid}/Verifications/{sid}",
    response_model=TwilioVerification,
    summary="Fetch a verification (Twilio Verify v2)",
    responses=_errors(401, 404, 503),
)
async def fetch_verification(
    service_sid: ServiceSid, sid: VerificationSid, twilio: TwilioDep
) -> TwilioVerification:
    return await twilio.fetch_verification(service_sid, sid)


@router.post(
    "/{service_sid}/Verifications/{sid}",
    response_model=TwilioVerification,
    summary="Cancel or approve a verification (Twilio Verify v2)",
    responses=_errors(400, 401, 404, 413, 503),
    openapi_extra=_form_body(VerificationUpdateForm),
)
async def update_verification(
    service_sid: ServiceSid,
    sid: VerificationSid,
    twilio: TwilioDep,
    body: Annotated[VerificationUpdateForm, Depends(form(VerificationUpdateForm))],
) -> TwilioVerification:
    """`Status=canceled` ends it now; `Status=approved` approves it out of band (as a
    correct check would)."""
    return await twilio.update_verification(service_sid, sid, body.status)


@router.post(
    "/{service_sid}/VerificationCheck",
    response_model=TwilioVerificationCheck,
    summary="Check a code (Twilio Verify v2)",
    responses=_errors(400, 401, 404, 413, 429, 503),
    openapi_extra=_form_body(VerificationCheckForm),
)
async def check_verification(
    service_sid: ServiceSid,
    twilio: TwilioDep,
    body: Annotated[VerificationCheckForm, Depends(form(VerificationCheckForm))],
) -> TwilioVerificationCheck:
    """`Code` with `To` (the newest verification of it on this service) or
    `VerificationSid`. A wrong code answers `valid: false`; a finished verification 20404
    (60202 once out of attempts), with `otp_status` and `otp_reason`."""
    return await twilio.check(service_sid, body)


# -------------------------------------------------------------------- attempts
attempts_router = APIRouter(
    prefix="/v2/Attempts", tags=["twilio-verify-v2"], route_class=TwilioRoute
)


async def attempt_query(
    created_after: Annotated[datetime | None, Query(alias="DateCreatedAfter")] = None,
    created_before: Annotated[datetime | None, Query(alias="DateCreatedBefore")] = None,
    to: Annotated[str | None, Query(alias="ChannelData.To", min_length=1, max_length=320)] = None,
    country: Annotated[str | None, Query(alias="Country", pattern=r"^[A-Za-z]{2}$")] = None,
    channel: Annotated[TwilioChannel | None, Query(alias="Channel")] = None,
    service_sid: Annotated[str | None, Query(alias="VerifyServiceSid", max_length=34)] = None,
    verification_sid: Annotated[str | None, Query(alias="VerificationSid", max_length=34)] = None,
    status: Annotated[Literal["converted", "unconverted"] | None, Query(alias="Status")] = None,
) -> AttemptQuery:
    """Twilio's attempt filters (`Status` is the conversion status)."""
    return AttemptQuery(
        created_after=created_after,
        created_before=created_before,
        to=to,
        country=country,
        channel=channel,
        service_sid=service_sid,
        verification_sid=verification_sid,
        status=status,
    )


AttemptQueryDep = Annotated[AttemptQuery, Depends(attempt_query)]


@attempts_router.get(
    "",
    response_model=TwilioAttemptPage,
    summary="List verification attempts",
    responses=_errors(400, 401, 503),
)
async def list_attempts(
    twilio: TwilioDep,
    query: AttemptQueryDep,
    page_size: Annotated[int, Query(alias="PageSize", ge=1, le=MAX_PAGE_SIZE)] = 50,
    page: Annotated[int, Query(alias="Page", ge=0, le=100_000)] = 0,
    page_token: Annotated[str | None, Query(alias="PageToken", max_length=128)] = None,
) -> TwilioAttemptPage:
    """Every send of the application's service verifications, newest first (event log)."""
    attempts, more = await twilio.list_attempts(query, page=page, page_size=page_size)
    meta = _page_meta(twilio.urls.attempts(), "attempts", page, page_size, more)
    return TwilioAttemptPage(attempts=attempts, meta=meta)


@attempts_router.get(
    "/Summary",
    response_model=TwilioAttemptsSummary,
    summary="Summarise verification attempts",
    responses=_errors(400, 401, 503),
)
async def attempts_summary(
    twilio: TwilioDep,
    query: AttemptQueryDep,
    destination_prefix: Annotated[
        str | None, Query(alias="DestinationPrefix", max_length=16)
    ] = None,
) -> TwilioAttemptsSummary:
    """Attempts, and those whose verification was approved (converted)."""
    if destination_prefix is not None:
        raise invalid_parameter("DestinationPrefix", "not supported")
    return await twilio.attempts_summary(query)


@attempts_router.get(
    "/{sid}",
    response_model=TwilioAttempt,
    summary="Fetch a verification attempt",
    responses=_errors(401, 404, 503),
)
async def fetch_attempt(
    sid: Annotated[str, Path(description="The attempt's sid (`VL...`).", max_length=34)],
    twilio: TwilioDep,
) -> TwilioAttempt:
    return await twilio.fetch_attempt(sid)
