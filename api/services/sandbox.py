"""The sandbox inbox: messages the sandbox provider 'delivered' for test-mode verifications.

This simulated phone and mailbox is the only place a code can be read, so only test keys
read it. A read may long-poll: it waits until a matching message arrives (woken by the
process's `InboxWatch`) or its wait is over.
"""

from __future__ import annotations

import asyncio

from api.auth import Principal
from api.inbox import InboxWatch
from api.problems import Forbidden, invalid, param_error
from otp.domain import Mode
from otp.domain.destinations import (
    InvalidDestinationError,
    parse_any,
)
from otp.store import Store
from otp.store.tables import SandboxMessage


def normalized_destination(to: str | None) -> str | None:
    """`to` normalised like on create (E.164 or lower-cased email); 422 if it is neither."""
    if to is None:
        return None
    try:
        return parse_any(to).value
    except InvalidDestinationError as exc:
        raise invalid([param_error("query", "to", str(exc), "invalid_destination")]) from None


async def read_inbox(
    store: Store,
    watch: InboxWatch,
    *,
    principal: Principal,
    to: str | None,
    verification_id: str | None,
    limit: int,
    wait: float,
) -> list[SandboxMessage]:
    """Newest first; with `wait` > 0 and nothing yet, wait up to `wait` seconds for one."""
    if principal.mode is not Mode.TEST:
        raise Forbidden("The sandbox inbox is only readable with a test-mode key.")
    destination = normalized_destination(to)

    async def page() -> list[SandboxMessage]:
        return await store.list_sandbox_messages(
            application_id=principal.application_id,
            to=destination,
            verification_id=verification_id,
            limit=limit,
        )

    if wait <= 0:
        return await page()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    async with watch.watching(
        application_id=principal.application_id, to=destination, verification_id=verification_id
    ) as waiter:
        rows = await page()  # read once the watch is on: nothing can slip between
        while not rows and (left := deadline - loop.time()) > 0:
            await waiter.wait(min(left, watch.recheck_s))
            rows = await page()
    return rows
