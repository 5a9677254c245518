"""The console's web plumbing: templates, its security headers, the signed-in user and
the CSRF check as dependencies, and its HTML error pages.

Every response under `/console/` carries a strict Content-Security-Policy (no inline
script or style: scripts and styles are files under `static/`), `frame-ancestors
'none'`, `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` and
`Cache-Control: no-store`. A POST is refused with a 403 page unless it carries the
session's CSRF token (form field `csrf_token`, or header `X-CSRF-Token` for htmx).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import RedirectResponse, Response

from api.console.services.auth import COOKIE, ConsoleContext, csrf_ok, resolve
from api.deps import get_settings, get_store

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class LoginRequired(Exception):
    """No valid session: answered by a redirect to the sign-in page."""


class ConsoleRefused(Exception):
    """A 403 page: a bad CSRF token, or a page the user's role may not open."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    console: ConsoleContext | None = None,
) -> Response:
    values = {"console": console, **(context or {})}
    return templates.TemplateResponse(request, name, values, status_code=status_code)


async def security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Add the console's headers to every `/console/` response (errors included)."""
    response = await call_next(request)
    if request.url.path == "/console" or request.url.path.startswith("/console/"):
        for name, value in SECURITY_HEADERS.items():
            response.headers[name] = value
        response.headers["Cache-Control"] = "no-store"
    return response


async def current_user(request: Request) -> ConsoleContext:
    """The signed-in user, else LoginRequired."""
    context = await resolve(get_store(request), get_settings(request), request.cookies.get(COOKIE))
    if context is None:
        raise LoginRequired()
    request.state.console = context
    return context


async def csrf_checked(
    request: Request, user: Annotated[ConsoleContext, Depends(current_user)]
) -> ConsoleContext:
    """The signed-in user of a POST carrying its session's CSRF token, else a 403 page."""
    presented = request.headers.get("X-CSRF-Token")
    if presented is None:
        form = await request.form()
        value = form.get("csrf_token")
        presented = value if isinstance(value, str) else None
    if not csrf_ok(user.csrf_token, presented):
        raise ConsoleRefused("The form's security token is missing or stale; reload the page.")
    return user


async def admin_user(user: Annotated[ConsoleContext, Depends(current_user)]) -> ConsoleContext:
    if not user.is_admin:
        raise ConsoleRefused("This page is for administrators.")
    return user


async def admin_change(user: Annotated[ConsoleContext, Depends(csrf_checked)]) -> ConsoleContext:
    """An administrator's POST carrying its CSRF token, else a 403 page."""
    if not user.is_admin:
        raise ConsoleRefused("This page is for administrators.")
    return user


def on_login_required(request: Request, exc: Exception) -> Response:
    return RedirectResponse("/console/login", status_code=303)


def on_refused(request: Request, exc: Exception) -> Response:
    reason = exc.reason if isinstance(exc, ConsoleRefused) else "Refused."
    console = getattr(request.state, "console", None)
    return render(request, "error.html", {"reason": reason}, status_code=403, console=console)


UserDep = Annotated[ConsoleContext, Depends(current_user)]
AdminDep = Annotated[ConsoleContext, Depends(admin_user)]
CsrfDep = Annotated[ConsoleContext, Depends(csrf_checked)]
AdminChangeDep = Annotated[ConsoleContext, Depends(admin_change)]
