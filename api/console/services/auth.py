"""Console sign-in: argon2 passwords, login throttling, server-side sessions with an idle
timeout, and the CSRF token of each session.

Rules: the browser holds a random token; the store holds only its SHA-256 (the session
id). A session ends after `console_session_idle_minutes` without a request, at its
absolute expiry (`console_session_max_hours`) or at sign-out. Failed sign-ins are counted
per user name and per client address with the shared limiter, under keyed hashes (never
the address or name in clear); a full window refuses before any password is checked.
Unknown users cost the same argon2 work as known ones.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from otp.risk.limits import Hit, Limit, Limiter
from otp.settings import Settings
from otp.store import Store, utcnow
from otp.store import console as store_console
from otp.store.tables import ConsoleUser

HASHER = PasswordHasher()
_DUMMY_HASH = HASHER.hash(secrets.token_urlsafe(16))
_LABEL = b"otp/console-login/v1"
COOKIE = "otp_console"


class LoginThrottled(Exception):
    """Too many failed sign-ins for this user name or client address."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("too many failed sign-ins")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class ConsoleContext:
    """The signed-in user of a request and its session's CSRF token."""

    session_id: str
    username: str
    role: str
    csrf_token: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def generate_password() -> str:
    """A new random password (128 bits, URL-safe)."""
    return secrets.token_urlsafe(16)


def session_id_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _keyed(secret: bytes, kind: str, value: str) -> str:
    return hmac.new(secret, _LABEL + b"|" + f"{kind}|{value}".encode(), hashlib.sha256).hexdigest()


def login_hits(settings: Settings, secret: bytes, username: str, address: str) -> list[Hit]:
    """The limits a failed sign-in charges: per user name and per client address."""
    window = settings.console_login_window_s
    attempts = settings.console_login_attempts
    return [
        Hit(
            f"console_login:user:{_keyed(secret, 'user', username.lower())}",
            Limit("console_login_user", attempts, window),
        ),
        Hit(
            f"console_login:ip:{_keyed(secret, 'ip', address)}",
            Limit("console_login_ip", attempts, window),
        ),
    ]


def _password_ok(user: ConsoleUser | None, password: str) -> bool:
    try:
        HASHER.verify(user.password_hash if user is not None else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
    return user is not None and not user.disabled


async def sign_in(
    store: Store,
    limiter: Limiter,
    settings: Settings,
    secret: bytes,
    *,
    username: str,
    password: str,
    address: str,
    now: datetime | None = None,
) -> tuple[str, ConsoleContext] | None:
    """A new session's browser token and context, None for a wrong name or password;
    LoginThrottled when a window of failed sign-ins is full."""
    hits = login_hits(settings, secret, username, address)
    full = [d for d in await limiter.peek(hits) if not d.allowed]
    if full:
        raise LoginThrottled(max(d.reset_s for d in full))
    user = await store_console.get_user_by_name(store, username=username.lower())
    if not _password_ok(user, password):
        await limiter.hit_all(hits)
        return None
    assert user is not None
    if HASHER.check_needs_rehash(user.password_hash):
        await store_console.set_password_hash(
            store, user_id=user.id, password_hash=hash_password(password)
        )
    when = now or utcnow()
    token = secrets.token_urlsafe(32)
    row = await store_console.create_session(
        store,
        session_id=session_id_of(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        expires_at=when + timedelta(hours=settings.console_session_max_hours),
        now=when,
    )
    return token, ConsoleContext(row.id, user.username, user.role, row.csrf_token)


async def resolve(
    store: Store, settings: Settings, token: str | None, *, now: datetime | None = None
) -> ConsoleContext | None:
    """The context of a browser token; None (and the session deleted) once it is idle,
    expired, or its user disabled."""
    if not token:
        return None
    session_id = session_id_of(token)
    found = await store_console.get_session(store, session_id=session_id)
    if found is None:
        return None
    session, user = found
    when = now or utcnow()
    idle = timedelta(minutes=settings.console_session_idle_minutes)
    if user.disabled or session.expires_at <= when or session.last_seen_at + idle <= when:
        await store_console.delete_session(store, session_id=session_id)
        return None
    await store_console.touch_session(store, session_id=session_id, now=when)
    return ConsoleContext(session_id, user.username, user.role, session.csrf_token)


def csrf_ok(expected: str, presented: str | None) -> bool:
    """The presented CSRF token equals the session's (constant time)."""
    return bool(presented) and hmac.compare_digest(expected.encode(), (presented or "").encode())


async def add_user(store: Store, *, username: str, role: str, password: str) -> ConsoleUser:
    """A new console user (name lower-cased); ValueError for a bad name or role,
    store_console.UserExistsError for a taken name."""
    name = username.lower()
    if not store_console.USERNAME_RE.match(name):
        raise ValueError("a user name is 2-64 characters: a-z, 0-9, '.', '_', '@', '-'")
    return await store_console.create_user(
        store, username=name, role=role, password_hash=hash_password(password)
    )
