"""The API's side of VerificationWorkflow: typed handles, bounded calls, scope checks.

`api.services.verifications` decides what to ask; this module starts the workflow and
talks to it (updates, queries, the delivery-receipt signal). Every Temporal call has an
RPC deadline *and* an overall bound (the SDK re-polls updates after an RPC deadline), so
a request never hangs when no worker runs; the timeout surfaces as a 503 problem
through `api.exception_handlers`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryRejectedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    QueryRejectCondition,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import CancelledError as TemporalCancelledError
from temporalio.exceptions import TerminatedError, WorkflowAlreadyStartedError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

from api.auth import Principal
from api.problems import (
    IdempotencyKeyReused,
    VerificationAborted,
    VerificationFinished,
    VerificationNotFound,
)
from api.temporal_errors import is_not_found
from otp.domain import (
    WORKFLOW_ID_PREFIX,
    CancelResult,
    CheckInput,
    CheckResult,
    DeliveryReceiptInput,
    NextChannelResult,
    ResendResult,
    ScopedInput,
    VerificationInput,
    VerificationState,
)
from otp.domain.ids import random_id
from otp.observability import search_attributes as sa
from otp.security.codes import code_digest, derive_code, new_nonce
from workflows.verification import VerificationWorkflow

logger = logging.getLogger("otp.api")

T = TypeVar("T")

# Bounds added to each RPC deadline for the overall wait (connection setup, decoding).
_SLACK_S = 1.0
# Updates the server aborted before accepting them are sent again this many times.
_UNACCEPTED_RETRIES = 3
_UNACCEPTED_BACKOFF_S = 0.05
# Update failures that mean "the server is busy": the verification may have closed meanwhile.
_BUSY = frozenset({RPCStatusCode.UNAVAILABLE, RPCStatusCode.RESOURCE_EXHAUSTED})


@dataclass(frozen=True)
class Timeouts:
    """How long the API waits on Temporal before answering 503."""

    rpc: timedelta = timedelta(seconds=5)  # start, query, history reads
    update: timedelta = timedelta(seconds=10)  # check, cancel
    delivery_update: timedelta = timedelta(seconds=30)  # resend, next-channel (they deliver)
    health: timedelta = timedelta(seconds=2)


def new_verification_id() -> str:
    """`ver_` + 26 lowercase base32 characters of 128 random bits."""
    return random_id(WORKFLOW_ID_PREFIX)


def idempotent_verification_id(principal: Principal, key: str) -> str:
    """The verification id an Idempotency-Key maps to, for one application and mode."""
    digest = hashlib.sha256(
        "\x1f".join((principal.application_id, principal.mode.value, key)).encode()
    ).digest()
    return WORKFLOW_ID_PREFIX + base64.b32encode(digest).decode().lower()[:26]


@dataclass(frozen=True)
class Started:
    id: str
    input: VerificationInput
    replayed: bool  # an Idempotency-Key matched an existing verification


async def _bounded(call: Awaitable[T], limit: timedelta) -> T:
    async with asyncio.timeout(limit.total_seconds() + _SLACK_S):
        return await call


def _execution_status_of(err: WorkflowFailureError) -> str:
    cause = err.cause
    if isinstance(cause, TerminatedError):
        return "terminated"
    if isinstance(cause, TemporalCancelledError):
        return "canceled"
    if isinstance(cause, TemporalTimeoutError):
        return "timed_out"
    return "failed"


def _comparable(input: VerificationInput) -> dict[str, object]:
    return input.model_dump(mode="json", exclude={"created_at", "code_nonce", "code_digest"})


def issue_code(
    code_secret: bytes, verification_id: str, input: VerificationInput
) -> VerificationInput:
    """The input with a freshly issued code: its nonce and keyed digest, never the code."""
    nonce = new_nonce()
    code = derive_code(code_secret, verification_id, nonce, input.code_length, input.code_type)
    return input.model_copy(
        update={"code_nonce": nonce, "code_digest": code_digest(code_secret, verification_id, code)}
    )


class VerificationService:
    def __init__(
        self,
        client: Client,
        *,
        task_queue: str,
        timeouts: Timeouts,
        code_secret: bytes | None = None,
    ) -> None:
        """With `code_secret`, codes are issued here, with the start (nonce + keyed digest
        in the encrypted input): the workflow then needs no activity to issue one."""
        self._client = client
        self._task_queue = task_queue
        self.timeouts = timeouts
        self._code_secret = code_secret

    def _handle(
        self, verification_id: str
    ) -> WorkflowHandle[VerificationWorkflow, VerificationState]:
        return self._client.get_workflow_handle_for(VerificationWorkflow.run, verification_id)

    # ------------------------------------------------------------------ start
    async def start(
        self, input: VerificationInput, principal: Principal, *, idempotency_key: str | None
    ) -> Started:
        first = input.channels[0]
        pairs: list[SearchAttributePair[str]] = [
            SearchAttributePair(sa.STATUS, "pending"),
            SearchAttributePair(sa.CHANNEL, first.channel.value),
            SearchAttributePair(sa.APPLICATION, principal.application_id),
            SearchAttributePair(sa.MODE, principal.mode.value),
        ]
        if input.country:
            pairs.append(SearchAttributePair(sa.COUNTRY, input.country))
        verification_id = (
            idempotent_verification_id(principal, idempotency_key)
            if idempotency_key is not None
            else new_verification_id()
        )
        if self._code_secret is not None:
            input = issue_code(self._code_secret, verification_id, input)
        t = self.timeouts.rpc
        try:
            handle = await _bounded(
                self._client.start_workflow(
                    VerificationWorkflow.run,
                    input,
                    id=verification_id,
                    task_queue=self._task_queue,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    id_conflict_policy=(
                        WorkflowIDConflictPolicy.USE_EXISTING
                        if idempotency_key is not None
                        else WorkflowIDConflictPolicy.FAIL
                    ),
                    search_attributes=TypedSearchAttributes(pairs),
                    rpc_timeout=t,
                ),
                t,
            )
        except WorkflowAlreadyStartedError:
            if idempotency_key is None:
                raise
            # The key's verification exists and is already closed: replay it all the same.
            handle = self._handle(verification_id)
        if idempotency_key is None:
            return Started(verification_id, input, replayed=False)
        stored = await self._stored_input(handle)
        if _comparable(stored) != _comparable(input):
            raise IdempotencyKeyReused(
                "This Idempotency-Key was already used with a different request body."
            )
        return Started(verification_id, stored, replayed=stored.created_at != input.created_at)

    async def started_input(self, verification_id: str) -> VerificationInput:
        """The input a verification was started with (its first history event)."""
        return await self._stored_input(self._handle(verification_id))

    async def _stored_input(
        self, handle: WorkflowHandle[VerificationWorkflow, VerificationState]
    ) -> VerificationInput:
        """The input the verification was started with (its first history event)."""
        t = self.timeouts.rpc

        async def first_event_input() -> VerificationInput:
            async for event in handle.fetch_history_events(page_size=1, rpc_timeout=t):
                payloads = event.workflow_execution_started_event_attributes.input.payloads
                decoded = await self._client.data_converter.decode(payloads, [VerificationInput])
                if decoded and isinstance(decoded[0], VerificationInput):
                    return decoded[0]
                break
            raise VerificationNotFound()

        return await _bounded(first_event_input(), t)

    # ------------------------------------------------------------------ reads
    async def state(self, verification_id: str, principal: Principal) -> VerificationState:
        """The verification's state now (its final state once it is closed)."""
        handle = self._handle(verification_id)
        t = self.timeouts.rpc
        try:
            try:
                state = await _bounded(
                    handle.query(
                        VerificationWorkflow.state,
                        reject_condition=QueryRejectCondition.NOT_OPEN,
                        rpc_timeout=t,
                    ),
                    t,
                )
            except WorkflowQueryRejectedError:
                state = await self._final_state(handle)
        except RPCError as err:
            # Unknown to Temporal (never started, or past its retention): callers may know
            # it from the store.
            if is_not_found(err):
                raise VerificationNotFound() from None
            raise
        _require_scope(state, principal)
        return state

    async def _final_state(
        self, handle: WorkflowHandle[VerificationWorkflow, VerificationState]
    ) -> VerificationState:
        t = self.timeouts.rpc
        try:
            return await _bounded(handle.result(rpc_timeout=t), t)
        except WorkflowFailureError as err:
            raise VerificationAborted(_execution_status_of(err)) from None
        except RPCError as err:
            if is_not_found(err):  # never started, or past Temporal's retention
                raise VerificationNotFound() from None
            raise

    # ---------------------------------------------------------------- updates
    async def _update(
        self,
        handle: WorkflowHandle[VerificationWorkflow, VerificationState],
        principal: Principal,
        call: Callable[[str], Awaitable[T]],
        limit: timedelta,
        update_id: str | None = None,
    ) -> T:
        """Send an update, once per id: a try the server aborted or was too busy to take is
        sent again under the same update id, so Temporal applies it at most once."""
        update_id = update_id or f"upd_{os.urandom(16).hex()}"
        for attempt in range(_UNACCEPTED_RETRIES + 1):
            try:
                return await _bounded(call(update_id), limit)
            except RPCError as err:
                if (
                    err.status == RPCStatusCode.FAILED_PRECONDITION
                    and attempt < _UNACCEPTED_RETRIES
                ):
                    # The server aborted the update before accepting it (its workflow task
                    # failed, e.g. UnhandledCommand when an activity completion raced it):
                    # it was never applied, so sending it again is safe.
                    await asyncio.sleep(_UNACCEPTED_BACKOFF_S * 2**attempt)
                    continue
                if is_not_found(err):
                    break
                if err.status in _BUSY:
                    await self._raise_if_closed(handle, principal)
                    if attempt < _UNACCEPTED_RETRIES:
                        # Still running: the server aborted this try (e.g. its workflow
                        # task was lost under load). The same id cannot count twice.
                        await asyncio.sleep(_UNACCEPTED_BACKOFF_S * 2**attempt)
                        continue
                raise
            except (WorkflowUpdateRPCTimeoutOrCancelledError, TimeoutError):
                await self._raise_if_closed(handle, principal)
                raise
        # NOT_FOUND: either no such workflow (the final read raises 404 too) or it has
        # already closed, or closed while the update was in flight: name its final status.
        state = await self._final_state(handle)
        _require_scope(state, principal)
        raise VerificationFinished(state.status.value, state.reason)

    async def _raise_if_closed(
        self, handle: WorkflowHandle[VerificationWorkflow, VerificationState], principal: Principal
    ) -> None:
        """An update that could not get through (server busy, timed out) may have lost the
        race to the verification's end: then its final status, not "retry", is the answer."""
        t = self.timeouts.rpc
        try:
            description = await _bounded(handle.describe(rpc_timeout=t), t)
        except (RPCError, TimeoutError):
            return  # cannot tell: the caller's own error stands
        if description.status in (None, WorkflowExecutionStatus.RUNNING):
            return
        state = await self._final_state(handle)
        _require_scope(state, principal)
        raise VerificationFinished(state.status.value, state.reason)

    async def check(
        self,
        verification_id: str,
        principal: Principal,
        *,
        digest: str,
        update_id: str | None = None,
    ) -> CheckResult:
        """Check a code. The same `update_id` again returns the first answer, counted once."""
        handle = self._handle(verification_id)
        t = self.timeouts.update
        arg = CheckInput(
            digest=digest, application_id=principal.application_id, mode=principal.mode
        )
        return await self._update(
            handle,
            principal,
            lambda uid: handle.execute_update(
                VerificationWorkflow.check, arg, id=uid, rpc_timeout=t
            ),
            t,
            update_id,
        )

    async def resend(self, verification_id: str, principal: Principal) -> ResendResult:
        return await self._scoped_update(
            verification_id, principal, VerificationWorkflow.resend, self.timeouts.delivery_update
        )

    async def next_channel(self, verification_id: str, principal: Principal) -> NextChannelResult:
        return await self._scoped_update(
            verification_id,
            principal,
            VerificationWorkflow.next_channel,
            self.timeouts.delivery_update,
        )

    async def cancel(self, verification_id: str, principal: Principal) -> CancelResult:
        return await self._scoped_update(
            verification_id, principal, VerificationWorkflow.cancel, self.timeouts.update
        )

    async def _scoped_update(
        self,
        verification_id: str,
        principal: Principal,
        update: UpdateMethodMultiParam[[VerificationWorkflow, ScopedInput], T],
        limit: timedelta,
    ) -> T:
        """One of the updates whose only argument is the caller's scope (typed reference)."""
        handle = self._handle(verification_id)
        arg = _scope(principal)
        return await self._update(
            handle,
            principal,
            lambda uid: handle.execute_update(update, arg, id=uid, rpc_timeout=limit),
            limit,
        )

    async def signal_receipt(self, verification_id: str, receipt: DeliveryReceiptInput) -> bool:
        """Signal a provider's delivery receipt; False if that workflow is gone or closed."""
        handle = self._handle(verification_id)
        t = self.timeouts.rpc
        try:
            await _bounded(
                handle.signal(VerificationWorkflow.delivery_receipt, receipt, rpc_timeout=t), t
            )
        except RPCError as err:
            if not is_not_found(err):
                raise
            return False
        return True

    async def temporal_healthy(self) -> bool:
        t = self.timeouts.health
        return await _bounded(self._client.service_client.check_health(timeout=t), t)


def _scope(principal: Principal) -> ScopedInput:
    return ScopedInput(application_id=principal.application_id, mode=principal.mode)


def _require_scope(state: VerificationState, principal: Principal) -> None:
    if state.application_id != principal.application_id or state.mode != principal.mode:
        raise VerificationNotFound()


def now_utc() -> datetime:
    return datetime.now(UTC)
