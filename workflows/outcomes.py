"""How a verification ends: its terminal status, the reason it keeps forever, and the
refusals of calls that come too late or from the wrong caller.

Rules:
- A verification ends once: the first terminal status wins, later ones change nothing.
- The reason is a plain sentence stored with the record; the reason code published in
  the search attributes is the status, plus the risk control's short code for a block.
- A correct code approves; an incorrect one uses an attempt, and the last attempt ends
  the verification `max_attempts_reached`.
- A call on someone else's verification is answered as if it did not exist; a call on a
  finished one says which status and reason finished it.
- Deterministic and sandbox-safe: the standard library, temporalio and otp.domain only;
  the caller passes the time in.
"""

from __future__ import annotations

from datetime import datetime

from temporalio.exceptions import ApplicationError

from otp.domain import CheckInput, CheckResult, ErrorType, ScopedInput, Status, VerificationState

EXPIRED = "the code expired before it was verified"
UNDELIVERABLE = "every channel in the plan failed to deliver"
APPROVED = "the correct code was submitted"
MAX_ATTEMPTS = "too many incorrect codes were submitted"
CANCELED = "canceled by the application"
BLOCKED = "refused by a risk control"

DIGEST_HEX_LEN = 64


def finish(state: VerificationState, status: Status, reason: str, now: datetime) -> bool:
    """End the verification with `status` at `now`; False (and no change) if it had ended."""
    if state.status.is_terminal:
        return False
    state.status = status
    state.reason = reason
    state.finished_at = now
    return True


def after_check(state: VerificationState, *, matched: bool) -> tuple[Status, str] | None:
    """The ending a check leads to (its attempt already counted), or None: still pending."""
    if matched:
        return Status.APPROVED, APPROVED
    if state.attempts_used >= state.max_attempts:
        return Status.MAX_ATTEMPTS_REACHED, MAX_ATTEMPTS
    return None


def check_result(state: VerificationState, *, matched: bool) -> CheckResult:
    """A check's answer, once its attempt is counted and its ending (if any) applied."""
    return CheckResult(
        status=state.status,
        valid=matched,
        attempts_remaining=state.attempts_remaining,
        attempts_used=state.attempts_used,
    )


def reason_code(status: Status, blocked_code: str | None) -> str:
    """The short reason published with the terminal status (`blocked:<code>` for a block)."""
    return f"{status.value}:{blocked_code}" if blocked_code else status.value


def require_scope(state: VerificationState, input: ScopedInput | CheckInput) -> None:
    """Refuse a caller of another application or mode, exactly as an unknown verification."""
    if input.application_id != state.application_id or input.mode != state.mode:
        raise ApplicationError("verification not found", type=ErrorType.NOT_FOUND)


def require_open(state: VerificationState) -> None:
    """Refuse a call on a finished verification, with the status and reason that ended it."""
    if state.status.is_terminal:
        raise ApplicationError(
            f"verification is {state.status.value}",
            {"status": state.status.value, "reason": state.reason},
            type=ErrorType.FINISHED,
            non_retryable=True,
        )


def require_caller(state: VerificationState, input: ScopedInput | CheckInput) -> None:
    """Refuse a call from another application or mode, or on a finished verification."""
    require_scope(state, input)
    require_open(state)


def require_digest(digest: str) -> None:
    """Refuse a submitted code digest that is not 64 lowercase hex digits."""
    if len(digest) != DIGEST_HEX_LEN or any(c not in "0123456789abcdef" for c in digest):
        raise ApplicationError("malformed code digest", type=ErrorType.INVALID_INPUT)
