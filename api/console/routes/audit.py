"""/console/audit: the log of every change made in the console (administrators only)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.console.web import AdminDep, render
from api.deps import StoreDep
from otp.store import console as store_console

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/audit")
async def audit_page(request: Request, user: AdminDep, store: StoreDep) -> Response:
    entries = await store_console.list_audit(store, limit=200)
    return render(request, "audit.html", {"entries": entries}, console=user)
