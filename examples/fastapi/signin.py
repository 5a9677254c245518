"""Sign-in with a one-time code, without telling anyone which users exist.

Every answer a visitor sees is the same whether or not the phone number or email belongs
to a user, and it takes the same time:

- `begin` records a pending sign-in and, for a known user only, starts the verification
  in the background: the page "if this is yours, we sent a code" is answered before the
  service is called, so its timing does not depend on the user existing. Unknown users
  are never sent a code.
- `check` answers a wrong code for an unknown user exactly as for a known one (the same
  attempts left), and no sooner than `CHECK_FLOOR_S`: a known user's check waits for the
  service, an unknown user's does not, and the floor hides the difference.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

from cachetools import TTLCache
from otp_client import (
    AsyncOtpClient,
    InvalidRequestError,
    OtpError,
    PermissionDeniedError,
    VerificationFinishedError,
)

log = logging.getLogger("example.signin")

CODE_TTL_S = 600  # the verification's lifetime, and the pending sign-in's
MAX_ATTEMPTS = 5  # checks allowed per code, mirrored for unknown users
CHECK_FLOOR_S = 0.3  # no check is answered sooner than this

_PHONE = re.compile(r"\+[1-9][0-9]{6,14}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_CODE = re.compile(r"[0-9A-Za-z]{4,10}")


def normalize(identifier: str) -> str | None:
    """An E.164 phone number or a lower-cased email address; None if it is neither."""
    text = identifier.strip()
    if "@" in text:
        email = text.lower()
        return email if _EMAIL.fullmatch(email) else None
    phone = re.sub(r"[\s().-]", "", text)
    return phone if _PHONE.fullmatch(phone) else None


class UserDirectory:
    """Phone numbers and emails of the users who may sign in; stands in for your user table."""

    def __init__(self, identifiers: Iterable[str]) -> None:
        self._ids: dict[str, str] = {}
        for number, raw in enumerate(identifiers, start=1):
            identifier = normalize(raw)
            if identifier is None:
                raise ValueError(f"not a phone number in E.164 or an email address: {raw!r}")
            self._ids[identifier] = f"usr_{number}"

    @classmethod
    def parse(cls, text: str) -> UserDirectory:
        """`APP_USERS`: comma-separated phone numbers and email addresses."""
        return cls(item for item in (part.strip() for part in text.split(",")) if item)

    def user_id(self, identifier: str) -> str | None:
        return self._ids.get(identifier)


class Outcome(enum.Enum):
    APPROVED = "approved"
    WRONG = "wrong"  # a wrong code; attempts are left
    ENDED = "ended"  # no pending sign-in, or it expired or ran out of attempts


@dataclass(frozen=True)
class CheckAnswer:
    outcome: Outcome
    identifier: str | None = None  # the signed-in user's phone or email, when approved
    attempts_left: int = 0


@dataclass
class PendingSignIn:
    identifier: str
    started: asyncio.Task[str | None] | None  # the verification id; None for unknown users
    attempts_left: int = MAX_ATTEMPTS


class SignIns:
    """Pending sign-ins of this process (use a shared store when you run several)."""

    def __init__(
        self,
        otp: AsyncOtpClient,
        users: UserDirectory,
        *,
        brand: str,
        check_floor_s: float = CHECK_FLOOR_S,
    ) -> None:
        self._otp = otp
        self._users = users
        self._brand = brand
        self._check_floor_s = check_floor_s
        self._pending: TTLCache[str, PendingSignIn] = TTLCache(maxsize=100_000, ttl=CODE_TTL_S)
        self._tasks: set[asyncio.Task[str | None]] = set()

    def begin(self, identifier: str, *, user_ip: str | None) -> str:
        """A new pending sign-in's id (for a cookie); a known user's code is sent meanwhile."""
        sign_in_id = secrets.token_urlsafe(32)
        user_id = self._users.user_id(identifier)
        started = None
        if user_id is not None:
            started = asyncio.create_task(self._start(identifier, user_id, user_ip))
            self._tasks.add(started)
            started.add_done_callback(self._tasks.discard)
        self._pending[sign_in_id] = PendingSignIn(identifier=identifier, started=started)
        return sign_in_id

    def identifier(self, sign_in_id: str | None) -> str | None:
        """The phone or email of a pending sign-in, as the visitor typed it (normalised)."""
        pending = self._pending.get(sign_in_id) if sign_in_id else None
        return pending.identifier if pending else None

    async def check(self, sign_in_id: str | None, code: str) -> CheckAnswer:
        """Check a code typed for a pending sign-in, never faster than the floor."""
        began = time.monotonic()
        try:
            return await self._check(sign_in_id, code.strip())
        finally:
            await asyncio.sleep(max(0.0, self._check_floor_s - (time.monotonic() - began)))

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _start(self, identifier: str, user_id: str, user_ip: str | None) -> str | None:
        try:
            created = await self._otp.start_verification(
                identifier,
                ttl_s=CODE_TTL_S,
                max_attempts=MAX_ATTEMPTS,
                brand=self._brand,
                user_id=user_id,
                user_ip=user_ip,
            )
        except OtpError as exc:  # refused (rate limit, risk policy) or unreachable
            log.warning("no code sent to %s: %s", user_id, exc)
            return None
        log.info("code sent to %s (%s)", user_id, created.id)
        return created.id

    async def _check(self, sign_in_id: str | None, code: str) -> CheckAnswer:
        pending = self._pending.get(sign_in_id) if sign_in_id else None
        if pending is None or sign_in_id is None:
            return CheckAnswer(Outcome.ENDED)
        if not _CODE.fullmatch(code):  # not a code at all: no attempt is used
            return CheckAnswer(Outcome.WRONG, attempts_left=pending.attempts_left)
        verification_id = await pending.started if pending.started else None
        if verification_id is None:  # an unknown user, or the send was refused
            pending.attempts_left -= 1
        else:
            try:
                result = await self._otp.check(verification_id, code)
            except (VerificationFinishedError, PermissionDeniedError):  # ended, locked out
                pending.attempts_left = 0
            except InvalidRequestError:  # a malformed code for this verification
                return CheckAnswer(Outcome.WRONG, attempts_left=pending.attempts_left)
            else:
                if result.valid:
                    del self._pending[sign_in_id]
                    return CheckAnswer(Outcome.APPROVED, identifier=pending.identifier)
                pending.attempts_left = result.attempts_remaining
        if pending.attempts_left <= 0:
            self._pending.pop(sign_in_id, None)
            return CheckAnswer(Outcome.ENDED)
        return CheckAnswer(Outcome.WRONG, attempts_left=pending.attempts_left)


class Sessions:
    """Signed-in sessions: an opaque random id (the cookie) to the user's phone or email."""

    def __init__(self, *, ttl_s: float) -> None:
        self._sessions: TTLCache[str, str] = TTLCache(maxsize=100_000, ttl=ttl_s)

    def create(self, identifier: str) -> str:
        session_id = secrets.token_urlsafe(32)
        self._sessions[session_id] = identifier
        return session_id

    def user(self, session_id: str | None) -> str | None:
        return self._sessions.get(session_id) if session_id else None

    def drop(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(session_id, None)
