"""/v1/sandbox: the test-mode inbox, where the sandbox provider 'delivers' codes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AuthDep, InboxWatchDep, StoreDep
from api.schemas.problem import problem_responses
from api.schemas.sandbox import SandboxMessageList, SandboxMessagePublic
from api.schemas.verifications import VERIFICATION_ID_PATTERN
from api.services import sandbox

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
    rows = await sandbox.read_inbox(
        store,
        watch,
        principal=principal,
        to=to,
        verification_id=verification_id,
        limit=limit,
        wait=wait,
    )
    return SandboxMessageList(messages=[SandboxMessagePublic.of(row) for row in rows])
