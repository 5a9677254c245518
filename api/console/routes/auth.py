"""/console/login, /console/logout and the home page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from api.console.services import auth
from api.console.web import CsrfDep, UserDep, render
from api.deps import LimiterDep, SecretsDep, SettingsDep, StoreDep
from otp.store import console as store_console

router = APIRouter(prefix="/console", include_in_schema=False)
LOGIN_CSRF_COOKIE = "otp_console_login"


def _secure(settings: SettingsDep) -> bool:
    chosen = settings.console_secure_cookies
    return settings.env != "dev" if chosen is None else chosen


@router.get("/login")
async def login_page(request: Request, settings: SettingsDep) -> Response:
    """The sign-in form, with a fresh token bound to a cookie (login CSRF)."""
    token = auth.generate_password()
    response = render(request, "login.html", {"login_csrf": token})
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_secure(settings),
        path="/console/",
    )
    return response


@router.post("/login")
async def login(
    request: Request,
    store: StoreDep,
    limiter: LimiterDep,
    settings: SettingsDep,
    secrets: SecretsDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    csrf_token: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Sign in: 303 to the home page, 401 for a wrong name or password, 429 when throttled."""
    if not auth.csrf_ok(request.cookies.get(LOGIN_CSRF_COOKIE, ""), csrf_token):
        return render(
            request, "error.html", {"reason": "The sign-in form is stale."}, status_code=403
        )
    address = request.client.host if request.client else ""
    try:
        signed = await auth.sign_in(
            store,
            limiter,
            settings,
            secrets.code_secret,
            username=username,
            password=password,
            address=address,
        )
    except auth.LoginThrottled as exc:
        page = render(
            request,
            "login.html",
            {"error": "Too many failed sign-ins; try again later.", "login_csrf": csrf_token},
            status_code=429,
        )
        page.headers["Retry-After"] = str(exc.retry_after_s)
        return page
    if signed is None:
        return render(
            request,
            "login.html",
            {"error": "Wrong user name or password.", "login_csrf": csrf_token},
            status_code=401,
        )
    token, context = signed
    await store_console.add_audit(store, username=context.username, action="sign_in")
    response = RedirectResponse("/console/", status_code=303)
    response.set_cookie(
        auth.COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_secure(settings),
        path="/console/",
        max_age=settings.console_session_max_hours * 3600,
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/console/")
    return response


@router.post("/logout")
async def logout(user: CsrfDep, store: StoreDep) -> Response:
    """End the session server side and drop the cookie."""
    await store_console.delete_session(store, session_id=user.session_id)
    await store_console.add_audit(store, username=user.username, action="sign_out")
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(auth.COOKIE, path="/console/")
    return response


@router.get("/")
async def home(request: Request, user: UserDep) -> Response:
    return render(request, "home.html", console=user)
