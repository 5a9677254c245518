"""/v1/admin/applications/{id}/provider-accounts: an application's own provider credentials.

Same admin token as the rest of /v1/admin. One account per provider (`twilio`,
`meta_whatsapp`, `smtp`, `http_gateway`) serves the application's live sends instead of
the service's global account; test mode always uses the sandbox. Secrets are sealed at
rest and never returned: a read lists which are set, with a hint for long ones. A PUT
replaces the whole account (that is how a secret is rotated).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from api.deps import ClientDep, SecretsDep, SettingsDep, StoreDep, require_admin
from api.routes.admin import ApplicationId, admin_responses
from api.schemas.provider_accounts import (
    ProviderAccountList,
    ProviderAccountPublic,
    ProviderAccountPut,
    ProviderAccountTest,
    ProviderAccountTestResult,
    ProviderName,
)
from api.services import provider_accounts as accounts
from otp.domain import Mode

router = APIRouter(
    prefix="/v1/admin/applications/{application_id}/provider-accounts",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
)


@router.get(
    "",
    response_model=ProviderAccountList,
    summary="List an application's own provider accounts",
    responses=admin_responses(401, 404),
)
async def list_provider_accounts(
    application_id: ApplicationId, store: StoreDep, settings: SettingsDep
) -> ProviderAccountList:
    rows = await accounts.list_accounts(store, application_id=application_id)
    return ProviderAccountList(
        accounts=[ProviderAccountPublic.of(row, settings.public_url) for row in rows]
    )


@router.get(
    "/{provider}",
    response_model=ProviderAccountPublic,
    summary="Read one provider account (without its secrets)",
    responses=admin_responses(401, 404, 422),
)
async def get_provider_account(
    application_id: ApplicationId, provider: ProviderName, store: StoreDep, settings: SettingsDep
) -> ProviderAccountPublic:
    row = await accounts.get_account(store, application_id=application_id, provider=provider)
    return ProviderAccountPublic.of(row, settings.public_url)


@router.put(
    "/{provider}",
    response_model=ProviderAccountPublic,
    summary="Create or replace a provider account",
    responses={
        201: {"model": ProviderAccountPublic, "description": "Created"},
        **admin_responses(401, 404, 422),
    },
)
async def put_provider_account(
    application_id: ApplicationId,
    provider: ProviderName,
    body: ProviderAccountPut,
    response: Response,
    store: StoreDep,
    secrets: SecretsDep,
    settings: SettingsDep,
) -> ProviderAccountPublic:
    """Replace every field (send the secrets too); live sends use it within seconds."""
    row, created = await accounts.put_account(
        store, secrets, settings, application_id=application_id, provider=provider, body=body
    )
    if created:
        response.status_code = status.HTTP_201_CREATED
    return ProviderAccountPublic.of(row, settings.public_url)


@router.delete(
    "/{provider}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Remove a provider account (the global account applies again)",
    responses=admin_responses(401, 404, 422),
)
async def delete_provider_account(
    application_id: ApplicationId, provider: ProviderName, store: StoreDep
) -> Response:
    await accounts.delete_account(store, application_id=application_id, provider=provider)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{provider}/test",
    response_model=ProviderAccountTestResult,
    summary="Send a test message through a provider account",
    responses=admin_responses(401, 404, 422, 502, 503),
)
async def test_provider_account(
    application_id: ApplicationId,
    provider: ProviderName,
    body: ProviderAccountTest,
    store: StoreDep,
    client: ClientDep,
    settings: SettingsDep,
    mode: Annotated[
        Mode, Query(description="`live`: through the account; `test`: through the sandbox.")
    ] = Mode.LIVE,
) -> ProviderAccountTestResult:
    """Sends one message (no code) and reports success, or the provider's error (200 either
    way). With `mode=test` the sandbox sends instead, and its magic numbers give errors."""
    result = await accounts.test_account(
        store,
        client,
        settings,
        application_id=application_id,
        provider=provider,
        body=body,
        mode=mode,
    )
    return ProviderAccountTestResult.of(result, mode)
