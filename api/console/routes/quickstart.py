"""/console/quickstart: the first loop in the browser (administrators). Create an
application and a test key (shown once), send a code to a test number, read it from the
sandbox inbox on the page (htmx polls it), type it, see it approved. Test mode only:
nothing is delivered for real. Each change is audited (ids, never the key or code)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import Response

from api.console.services.scope import principal_for
from api.console.web import AdminChangeDep, AdminDep, render
from api.deps import (
    StoreDep,
    get_inbox_watch,
    get_limiter,
    get_recorder,
    get_risk_caches,
    get_secrets,
    get_settings,
    verification_service,
)
from api.schemas.applications import ApiKeyCreate, ApplicationCreate
from api.schemas.verifications import CheckRequest, VerificationCreate
from api.services import applications, sandbox
from api.services.verifications import Verifications, require_id
from otp.domain import Mode
from otp.store import Store
from otp.store import console as store_console

router = APIRouter(prefix="/console/quickstart", include_in_schema=False)
TEST_NUMBER = "+15005550100"


async def _verifications(request: Request, store: Store, application_id: str) -> Verifications:
    return Verifications(
        principal=await principal_for(store, application_id=application_id, mode="test"),
        workflows=verification_service(request),
        store=store,
        limiter=get_limiter(request),
        secrets=get_secrets(request),
        settings=get_settings(request),
        recorder=get_recorder(request),
        caches=get_risk_caches(request),
    )


@router.get("")
async def quickstart(request: Request, user: AdminDep) -> Response:
    return render(request, "quickstart.html", {"step": "start"}, console=user)


@router.post("/application")
async def create(
    request: Request,
    user: AdminChangeDep,
    store: StoreDep,
    name: Annotated[str, Form(min_length=1, max_length=120)],
) -> Response:
    app = await applications.create_application(store, ApplicationCreate(name=name))
    key = await applications.create_key(
        store, application_id=app.id, body=ApiKeyCreate(mode=Mode.TEST, name="quickstart")
    )
    await store_console.add_audit(
        store,
        username=user.username,
        action="quickstart.application",
        target=app.id,
        details={"key_id": key.id, "hint": key.hint},
    )
    context = {"step": "send", "app": app, "key": key.key, "number": TEST_NUMBER}
    return render(request, "quickstart.html", context, console=user)


@router.post("/send")
async def send(
    request: Request,
    user: AdminChangeDep,
    store: StoreDep,
    app: Annotated[str, Form(max_length=64)],
    to: Annotated[str, Form(max_length=32)] = TEST_NUMBER,
) -> Response:
    verifications = await _verifications(request, store, app)
    created = await verifications.create(VerificationCreate(to=to), idempotency_key=None)
    await store_console.add_audit(
        store, username=user.username, action="quickstart.send", target=created.id
    )
    context = {"step": "check", "app_id": app, "verification_id": created.id}
    return render(request, "quickstart.html", context, console=user)


@router.get("/inbox")
async def inbox(
    request: Request,
    user: AdminDep,
    store: StoreDep,
    app: Annotated[str, Query(max_length=64)],
    verification_id: Annotated[str, Query(max_length=64)],
) -> Response:
    """The sandbox messages of the verification (an htmx fragment; it polls until one)."""
    principal = await principal_for(store, application_id=app, mode="test")
    messages = await sandbox.read_inbox(
        store,
        get_inbox_watch(request),
        principal=principal,
        to=None,
        verification_id=require_id(verification_id),
        limit=5,
        wait=0,
    )
    context = {"messages": messages, "app_id": app, "verification_id": verification_id}
    return render(request, "quickstart_inbox.html", context, console=user)


@router.post("/check")
async def check(
    request: Request,
    user: AdminChangeDep,
    store: StoreDep,
    app: Annotated[str, Form(max_length=64)],
    verification_id: Annotated[str, Form(max_length=64)],
    code: Annotated[str, Form(min_length=1, max_length=10)],
) -> Response:
    verifications = await _verifications(request, store, app)
    result = await verifications.check(
        require_id(verification_id), CheckRequest(code=code), idempotency_key=None
    )
    await store_console.add_audit(
        store,
        username=user.username,
        action="quickstart.check",
        target=verification_id,
        details={"status": result.status.value},
    )
    context = {"step": "done", "app_id": app, "verification_id": verification_id, "result": result}
    return render(request, "quickstart.html", context, console=user)
