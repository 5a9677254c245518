"""Request dependencies (`Annotated` aliases): settings, the Temporal client, the store,
the services built on them, API-key and admin-token auth."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import Client

from api.auth import ApiKeyAuthenticator, Principal, StoreUnavailableError
from api.inbox import InboxWatch
from api.problems import AdminUnauthorized, ServiceUnavailable, Unauthorized
from api.services.events import build_recorder
from api.services.risk_caches import RiskCaches
from api.services.verification_workflows import VerificationService
from otp.observability.logs import bind
from otp.risk.limits import Limiter
from otp.risk.limits.factory import build_limiter
from otp.settings import Secrets, Settings, admin_token
from otp.store import Store
from otp.store.events import EventRecorder

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key: `otp_test_...` (sandbox, no real delivery) or `otp_live_...`.",
)


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_secrets(request: Request) -> Secrets:
    secrets: Secrets = request.app.state.secrets
    return secrets


def get_client(request: Request) -> Client:
    client: Client | None = request.app.state.client
    if client is None:
        raise ServiceUnavailable("The API is starting; retry shortly.")
    return client


def get_store(request: Request) -> Store:
    store: Store | None = request.app.state.store
    if store is None:
        raise ServiceUnavailable("The API is starting; retry shortly.")
    return store


def get_inbox_watch(request: Request) -> InboxWatch:
    """The process's sandbox inbox watcher (made on first use)."""
    watch: InboxWatch | None = getattr(request.app.state, "inbox_watch", None)
    if watch is None:
        watch = request.app.state.inbox_watch = InboxWatch(get_store(request))
    return watch


def get_limiter(request: Request) -> Limiter:
    """The app's limiter (built by the lifespan; built here when no lifespan ran)."""
    limiter: Limiter | None = getattr(request.app.state, "limiter", None)
    if limiter is None:
        limiter = build_limiter(get_settings(request), get_store(request))
        request.app.state.limiter = limiter
    return limiter


async def _settings(request: Request) -> Settings:
    # Dependencies are coroutines: FastAPI runs plain functions in a thread pool, a hop
    # per dependency per request (measured: several percent of the API's CPU).
    return get_settings(request)


async def _inbox_watch(request: Request) -> InboxWatch:
    return get_inbox_watch(request)


async def _secrets(request: Request) -> Secrets:
    return get_secrets(request)


async def _client(request: Request) -> Client:
    return get_client(request)


async def _store(request: Request) -> Store:
    return get_store(request)


async def _limiter(request: Request) -> Limiter:
    return get_limiter(request)


def get_recorder(request: Request) -> EventRecorder | None:
    """The app's event recorder (made on first use; None while the API is starting)."""
    state = request.app.state
    recorder: EventRecorder | None = getattr(state, "recorder", None)
    if recorder is None and state.store is not None and state.client is not None:
        recorder = state.recorder = build_recorder(
            state.store, state.client, state.secrets, state.settings
        )
    return recorder


def get_risk_caches(request: Request) -> RiskCaches:
    """The process's risk-block and safe-list caches (made on first use)."""
    caches: RiskCaches | None = getattr(request.app.state, "risk_caches", None)
    if caches is None:
        caches = request.app.state.risk_caches = RiskCaches()
    return caches


def get_authenticator(request: Request) -> ApiKeyAuthenticator:
    authenticator: ApiKeyAuthenticator = request.app.state.authenticator
    return authenticator


def verification_service(request: Request) -> VerificationService:
    """The Temporal side of verifications (503 while the API is starting)."""
    settings = get_settings(request)
    return VerificationService(
        get_client(request),
        task_queue=settings.task_queue,
        timeouts=request.app.state.timeouts,
        code_secret=get_secrets(request).code_secret,
    )


async def _recorder(request: Request) -> EventRecorder | None:
    return get_recorder(request)


async def _risk_caches(request: Request) -> RiskCaches:
    return get_risk_caches(request)


async def _authenticator(request: Request) -> ApiKeyAuthenticator:
    return get_authenticator(request)


async def get_service(
    request: Request, client: Annotated[Client, Depends(_client)]
) -> VerificationService:
    return verification_service(request)


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    store: Annotated[Store, Depends(_store)],
) -> Principal:
    """The caller's principal: one 401 for a missing, malformed, unknown or revoked key."""
    authenticator: ApiKeyAuthenticator = request.app.state.authenticator
    try:
        principal = await authenticator.resolve(
            credentials.credentials if credentials else None, store
        )
    except StoreUnavailableError:
        raise ServiceUnavailable("The store did not answer; retry shortly.") from None
    if principal is None:
        raise Unauthorized()
    request.state.principal = principal
    bind(application_id=principal.application_id, mode=principal.mode.value)
    return principal


_admin_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="AdminToken",
    description="The admin token (`OTP_ADMIN_TOKEN`; in dev, the file `admin_token` in the "
    "data dir).",
)


def admin_token_digest(settings: Settings) -> bytes | None:
    """SHA-256 of the admin token, or None when the admin API is switched off."""
    token = admin_token(settings)
    return None if token is None else hashlib.sha256(token.encode()).digest()


async def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_admin_bearer)],
) -> None:
    """The admin token, compared in constant time; the admin API switched off: 404."""
    state = request.app.state
    if not hasattr(state, "admin_token_digest"):
        state.admin_token_digest = admin_token_digest(state.settings)
    expected: bytes | None = state.admin_token_digest
    if expected is None:
        raise StarletteHTTPException(status_code=404, detail="Not Found")
    presented = hashlib.sha256((credentials.credentials if credentials else "").encode()).digest()
    if not hmac.compare_digest(expected, presented):
        raise AdminUnauthorized()


SettingsDep = Annotated[Settings, Depends(_settings)]
SecretsDep = Annotated[Secrets, Depends(_secrets)]
ClientDep = Annotated[Client, Depends(_client)]
StoreDep = Annotated[Store, Depends(_store)]
InboxWatchDep = Annotated[InboxWatch, Depends(_inbox_watch)]
LimiterDep = Annotated[Limiter, Depends(_limiter)]
ServiceDep = Annotated[VerificationService, Depends(get_service)]
AuthDep = Annotated[Principal, Depends(authenticate)]
RecorderDep = Annotated[EventRecorder | None, Depends(_recorder)]
RiskCachesDep = Annotated[RiskCaches, Depends(_risk_caches)]
AuthenticatorDep = Annotated[ApiKeyAuthenticator, Depends(_authenticator)]
