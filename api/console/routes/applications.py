"""/console/applications: applications and their API keys (administrators only). A new
key is shown once, on the page that created it; lists show hints only. Every change is
written to the audit log (ids and hints, never a key)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Path, Request
from starlette.responses import RedirectResponse, Response

from api.console.services.auth import ConsoleContext
from api.console.web import AdminChangeDep, AdminDep, render
from api.deps import AuthenticatorDep, StoreDep
from api.schemas.applications import ApiKeyCreate, ApplicationCreate
from api.services import applications
from otp.domain import Mode
from otp.store import console as store_console

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/applications")
async def applications_page(request: Request, user: AdminDep, store: StoreDep) -> Response:
    found, _ = await applications.list_applications(store, limit=200, after=None)
    return render(request, "applications.html", {"applications": found}, console=user)


@router.post("/applications")
async def create_application(
    user: AdminChangeDep,
    store: StoreDep,
    name: Annotated[str, Form(min_length=1, max_length=120)],
) -> Response:
    created = await applications.create_application(store, ApplicationCreate(name=name))
    await store_console.add_audit(
        store, username=user.username, action="application.create", target=created.id
    )
    return RedirectResponse(f"/console/applications/{created.id}", status_code=303)


async def _keys_page(
    request: Request,
    user: ConsoleContext,
    store: StoreDep,
    application_id: str,
    new_key: str | None,
) -> Response:
    application = await applications.require_application(store, application_id)
    keys = await applications.list_keys(store, application_id=application_id)
    context = {"application": application, "keys": keys, "new_key": new_key}
    return render(request, "application.html", context, console=user)


@router.get("/applications/{application_id}")
async def application_page(
    request: Request,
    user: AdminDep,
    store: StoreDep,
    application_id: Annotated[str, Path(max_length=64)],
) -> Response:
    return await _keys_page(request, user, store, application_id, None)


@router.post("/applications/{application_id}/keys")
async def create_key(
    request: Request,
    user: AdminChangeDep,
    store: StoreDep,
    application_id: Annotated[str, Path(max_length=64)],
    mode: Annotated[Literal["test", "live"], Form()],
    name: Annotated[str, Form(max_length=120)] = "",
) -> Response:
    """Issue a key and show it on this page, once."""
    created = await applications.create_key(
        store, application_id=application_id, body=ApiKeyCreate(mode=Mode(mode), name=name)
    )
    await store_console.add_audit(
        store,
        username=user.username,
        action="api_key.create",
        target=created.id,
        details={"application_id": application_id, "mode": mode, "hint": created.hint},
    )
    return await _keys_page(request, user, store, application_id, created.key)


@router.post("/applications/{application_id}/keys/{key_id}/revoke")
async def revoke_key(
    user: AdminChangeDep,
    store: StoreDep,
    authenticator: AuthenticatorDep,
    application_id: Annotated[str, Path(max_length=64)],
    key_id: Annotated[str, Path(max_length=64)],
) -> Response:
    revoked = await applications.revoke_key(
        store, authenticator, application_id=application_id, key_id=key_id
    )
    await store_console.add_audit(
        store,
        username=user.username,
        action="api_key.revoke",
        target=revoked.id,
        details={"application_id": application_id, "hint": revoked.hint},
    )
    return RedirectResponse(f"/console/applications/{application_id}", status_code=303)
