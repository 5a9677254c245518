"""The sandbox inbox's long poll: one watcher per API process wakes the requests waiting
for a message, instead of each request querying the store on its own.

The worker writes the inbox from another process, so nothing is pushed to the API: while
any request waits, one task reads the messages newer than the last one it saw, every
`interval`, and wakes the waiters whose filter one of them matches. A woken request reads
its own page as usual. A waiter also looks again every `recheck_s` on its own, so a
message whose id was allocated before it committed (PostgreSQL sequences) is late by at
most that, never missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from otp.store import Store

logger = logging.getLogger("otp.api")


@dataclass(eq=False)
class Waiter:
    application_id: str
    to: str | None
    verification_id: str | None
    woken: asyncio.Event = field(default_factory=asyncio.Event)

    def matches(self, application_id: str, to: str, verification_id: str) -> bool:
        return (
            application_id == self.application_id
            and (self.to is None or to == self.to)
            and (self.verification_id is None or verification_id == self.verification_id)
        )

    async def wait(self, seconds: float) -> None:
        """Until woken or `seconds` passed; clears the wake-up for the next wait."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.woken.wait()
        self.woken.clear()


class InboxWatch:
    def __init__(self, store: Store, *, interval: float = 0.05, recheck_s: float = 1.0) -> None:
        self._store = store
        self.interval = interval
        self.recheck_s = recheck_s
        self._waiters: set[Waiter] = set()
        self._last_id: int | None = None
        self._task: asyncio.Task[None] | None = None
        self.reads = 0  # store reads made by the watcher (for tests and curiosity)

    @contextlib.asynccontextmanager
    async def watching(
        self, *, application_id: str, to: str | None, verification_id: str | None
    ) -> AsyncIterator[Waiter]:
        """Register a waiter. Read the inbox again inside the block before waiting: a
        message that landed before the registration wakes no one."""
        waiter = Waiter(application_id, to, verification_id)
        if self._last_id is None:
            self._last_id = await self._store.last_sandbox_message_id()
            self.reads += 1
        self._waiters.add(waiter)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._poll(), name="sandbox-inbox-watch")
        try:
            yield waiter
        finally:
            self._waiters.discard(waiter)

    async def _poll(self) -> None:
        while self._waiters:
            await asyncio.sleep(self.interval)
            try:
                rows = await self._store.sandbox_messages_after(self._last_id or 0)
            except Exception:
                logger.warning("the sandbox inbox could not be read", exc_info=True)
                continue  # the waiters look again on their own meanwhile
            self.reads += 1
            for message_id, application_id, to, verification_id in rows:
                self._last_id = max(self._last_id or 0, message_id)
                for waiter in self._waiters:
                    if waiter.matches(application_id, to, verification_id):
                        waiter.woken.set()
        # Nobody waits: start from the newest message again when someone does.
        self._last_id = None

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
