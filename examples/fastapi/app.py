"""Sign in with a one-time code: a FastAPI backend calling the OTP service server-side.

    uvicorn app:app --port 8080

Configuration (environment):
- `OTP_URL`: the service's base URL (`http://127.0.0.1:8000` for `make run`);
- `OTP_API_KEY`: the application's API key; used here only, never sent to the browser;
- `OTP_WEBHOOK_SECRET`: the `whsec_...` secret of the webhook endpoint pointing at
  `/webhooks/otp` (without it, webhooks are refused with 503);
- `APP_USERS`: comma-separated phone numbers and emails of the users who may sign in
  (stands in for your user table);
- `APP_BRAND`: the name shown in the message (default "Example");
- `COOKIE_SECURE=1`: mark cookies `Secure` (set it whenever the site is served over https).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl

from cachetools import TTLCache
from fastapi import APIRouter, Cookie, Depends, FastAPI, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from otp_client import AsyncOtpClient, OtpError, webhooks
from signin import CODE_TTL_S, Outcome, Sessions, SignIns, UserDirectory, normalize

log = logging.getLogger("example")

SIGN_IN_COOKIE = "signin"  # the pending sign-in, while the code is being typed
SESSION_COOKIE = "session"
SESSION_TTL_S = 12 * 3600
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


@dataclass(frozen=True)
class Config:
    otp_url: str
    otp_api_key: str
    webhook_secret: str | None
    users: UserDirectory
    brand: str
    secure_cookies: bool

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Config:
        missing = [name for name in ("OTP_URL", "OTP_API_KEY") if not env.get(name)]
        if missing:
            raise RuntimeError(f"set {' and '.join(missing)} (see README.md)")
        return cls(
            otp_url=env["OTP_URL"],
            otp_api_key=env["OTP_API_KEY"],
            webhook_secret=env.get("OTP_WEBHOOK_SECRET") or None,
            users=UserDirectory.parse(env.get("APP_USERS", "")),
            brand=env.get("APP_BRAND", "Example"),
            secure_cookies=env.get("COOKIE_SECURE", "") in ("1", "true"),
        )


@dataclass
class State:
    config: Config
    sign_ins: SignIns
    sessions: Sessions
    seen_webhooks: TTLCache[str, bool]


def get_state(request: Request) -> State:
    state: State = request.app.state.example
    return state


StateDep = Annotated[State, Depends(get_state)]
SignInCookie = Annotated[str | None, Cookie(alias=SIGN_IN_COOKIE)]
SessionCookie = Annotated[str | None, Cookie(alias=SESSION_COOKIE)]


async def form(request: Request) -> dict[str, str]:
    """The fields of an `application/x-www-form-urlencoded` body (the standard library's parser)."""
    return dict(parse_qsl((await request.body()).decode("utf-8", errors="replace")))


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def set_cookie(response: Response, state: State, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=state.config.secure_cookies,
    )


router = APIRouter()


@router.get("/")
async def sign_in_form(
    request: Request, state: StateDep, session: SessionCookie = None
) -> Response:
    if state.sessions.user(session):
        return redirect("/account")
    return page(request, "sign_in.html")


@router.post("/sign-in")
async def sign_in(request: Request, state: StateDep) -> Response:
    identifier = normalize((await form(request)).get("identifier", ""))
    if identifier is None:
        error = "Enter a phone number in international format (+14155550123) or an email."
        return page(request, "sign_in.html", 422, error=error)
    client = request.client.host if request.client else None
    sign_in_id = state.sign_ins.begin(identifier, user_ip=client)
    response = redirect("/sign-in/code")
    set_cookie(response, state, SIGN_IN_COOKIE, sign_in_id, CODE_TTL_S)
    return response


@router.get("/sign-in/code")
async def code_form(request: Request, state: StateDep, signin: SignInCookie = None) -> Response:
    identifier = state.sign_ins.identifier(signin)
    if identifier is None:
        return redirect("/")
    return page(request, "code.html", identifier=identifier)


@router.post("/sign-in/code")
async def check_code(request: Request, state: StateDep, signin: SignInCookie = None) -> Response:
    identifier = state.sign_ins.identifier(signin)
    try:
        answer = await state.sign_ins.check(signin, (await form(request)).get("code", ""))
    except OtpError as exc:  # the service is unreachable or failing: nothing was decided
        log.error("check failed: %s", exc)
        return page(request, "code.html", 503, identifier=identifier, unavailable=True)
    if answer.outcome is Outcome.WRONG:
        return page(request, "code.html", 400, identifier=identifier, attempts=answer.attempts_left)
    if answer.outcome is Outcome.ENDED or answer.identifier is None:
        error = "That code can no longer be used. Ask for a new one."
        ended = page(request, "sign_in.html", 400, error=error)
        ended.delete_cookie(SIGN_IN_COOKIE)
        return ended
    # A new random session id, apart from the pending sign-in's: nothing known before the
    # sign-in is worth anything after it.
    signed_in = redirect("/account")
    session_id = state.sessions.create(answer.identifier)
    set_cookie(signed_in, state, SESSION_COOKIE, session_id, SESSION_TTL_S)
    signed_in.delete_cookie(SIGN_IN_COOKIE)
    return signed_in


@router.get("/account")
async def account(request: Request, state: StateDep, session: SessionCookie = None) -> Response:
    user = state.sessions.user(session)
    if user is None:
        return redirect("/")
    return page(request, "account.html", user=user)


@router.post("/sign-out")
async def sign_out(state: StateDep, session: SessionCookie = None) -> Response:
    state.sessions.drop(session)
    response = redirect("/")
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.post("/webhooks/otp", status_code=204)
async def otp_webhook(request: Request, state: StateDep) -> Response:
    """Verify the Standard Webhooks signature over the raw body, then handle the event once."""
    if state.config.webhook_secret is None:
        return PlainTextResponse("webhooks are not configured", status_code=503)
    body = await request.body()
    try:
        event = webhooks.verify(state.config.webhook_secret, request.headers, body)
    except webhooks.WebhookVerificationError as exc:
        log.warning("webhook refused: %s", exc)
        return PlainTextResponse("invalid signature", status_code=400)
    if event.message_id and event.message_id not in state.seen_webhooks:
        state.seen_webhooks[event.message_id] = True  # retries carry the same webhook-id
        # Your handling goes here: audit, analytics, alerting on verification.blocked...
        log.info("webhook %s %s (%s)", event.type, event.data.id, event.message_id)
    return Response(status_code=204)


def create_app(config: Config) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if config.webhook_secret is None:
            log.warning("OTP_WEBHOOK_SECRET is not set: webhooks are refused")
        async with AsyncOtpClient(config.otp_api_key, base_url=config.otp_url) as otp:
            sign_ins = SignIns(otp, config.users, brand=config.brand)
            app.state.example = State(
                config=config,
                sign_ins=sign_ins,
                sessions=Sessions(ttl_s=SESSION_TTL_S),
                seen_webhooks=TTLCache(maxsize=100_000, ttl=24 * 3600),
            )
            try:
                yield
            finally:
                await sign_ins.aclose()

    app = FastAPI(title="Sign in with a one-time code", lifespan=lifespan, openapi_url=None)
    app.include_router(router)
    return app


logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
app = create_app(Config.from_env())
