"""/v1/sandbox: the test-mode inbox, where the sandbox provider 'delivers' codes."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AuthDep, InboxWatchDep, StoreDep
from api.errors import Forbidden, invalid, param_error
from api.schemas import (
    VERIFICATION_ID_PATTERN,
    SandboxMessageList,
    SandboxMessagePublic,
    problem_responses,
)
from otp.domain import Channel, Mode
from otp.domain.destinations import (
    InvalidDestinationError,
    looks_like_email,
    parse_email,
    parse_phone,
)
from otp.store.tables import SandboxMessage

router = APIRouter(prefix="/v1/sandbox", tags=["sandbox"])

MAX_WAIT_S = 20.0


@router.get(
    "/messages",
    response_model=SandboxMessageList,
    summary="Read the sandbox inbox (test keys only)",
    responses=problem_responses(401, 403, 422),
)
async def list_messages(
    principal: AuthDep,
    store: StoreDep,
    watch: InboxWatchDep,
    to: Annotated[
        str | None,
        Query(
            max_length=320,
            description="Destination (E.164 phone number or email), normalised like on create.",
            examples=["+14155550123"],
        ),
    ] = None,
    verification_id: Annotated[
        str | None, Query(pattern=VERIFICATION_ID_PATTERN, description="Only this verification.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="At most this many messages.")] = 20,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=MAX_WAIT_S,
            description="Long poll: if no message matches yet, wait up to this many seconds "
            "for one to arrive (answered as soon as one does). 0, the default, answers at once.",
        ),
    ] = 0,
) -> SandboxMessageList:
    """Messages the sandbox provider received for test-mode verifications, newest first.

    This simulated phone and mailbox is the only place a code can be read: live keys
    get 403. With `wait`, a test reads the code of a verification it just created in one
    request: `GET /v1/sandbox/messages?verification_id=...&wait=10`.
    """
    if principal.mode is not Mode.TEST:
        raise Forbidden("The sandbox inbox is only readable with a test-mode key.")
    destination: str | None = None
    if to is not None:
        try:
            destination = (parse_email(to) if looks_like_email(to) else parse_phone(to)).value
        except InvalidDestinationError as exc:
            raise invalid([param_error("query", "to", str(exc), "invalid_destination")]) from None

    async def page() -> list[SandboxMessage]:
        return await store.list_sandbox_messages(
            application_id=principal.application_id,
            to=destination,
            verification_id=verification_id,
            limit=limit,
        )

    if wait <= 0:
        rows = await page()
    else:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        async with watch.watching(
            application_id=principal.application_id, to=destination, verification_id=verification_id
        ) as waiter:
            rows = await page()  # read once the watch is on: nothing can slip between
            while not rows and (left := deadline - loop.time()) > 0:
                await waiter.wait(min(left, watch.recheck_s))
                rows = await page()
    return SandboxMessageList(
        messages=[
            SandboxMessagePublic(
                message_id=row.message_id,
                verification_id=row.verification_id,
                channel=Channel(row.channel),
                to=row.to,
                subject=row.subject,
                body=row.body,
                created_at=row.created_at,
            )
            for row in rows
        ]
    )
