"""Request dependencies (`Annotated` aliases): settings, the Temporal client, the store, auth."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from temporalio.client import Client

from api.auth import ApiKeyAuthenticator, Principal, StoreUnavailableError
from api.errors import ServiceUnavailable, Unauthorized
from api.inbox import InboxWatch
from api.service import VerificationService
from otp.observability.logs import bind
from otp.risk.limits import Limiter
from otp.risk.limits.factory import build_limiter
from otp.settings import Secrets, Settings
from otp.store import Store

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


async def get_service(
    request: Request, client: Annotated[Client, Depends(_client)]
) -> VerificationService:
    settings = get_settings(request)
    return VerificationService(
        client,
        task_queue=settings.task_queue,
        timeouts=request.app.state.timeouts,
        code_secret=get_secrets(request).code_secret,
    )


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


SettingsDep = Annotated[Settings, Depends(_settings)]
SecretsDep = Annotated[Secrets, Depends(_secrets)]
ClientDep = Annotated[Client, Depends(_client)]
StoreDep = Annotated[Store, Depends(_store)]
InboxWatchDep = Annotated[InboxWatch, Depends(_inbox_watch)]
LimiterDep = Annotated[Limiter, Depends(_limiter)]
ServiceDep = Annotated[VerificationService, Depends(get_service)]
AuthDep = Annotated[Principal, Depends(authenticate)]
