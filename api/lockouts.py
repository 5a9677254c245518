"""Lockouts and the safe list, as the verification routes and the admin routes use them.

- When a wrong code brings a destination's failed-check counter to the cap, the check
  route records the lockout (`otp.store.lockouts`, masked) and emits a
  `destination.locked` webhook event: best effort, the counter alone refuses the
  destination whether or not the row was written.
- Creates read the safe list of their application and mode from a cache re-read at most
  every `SAFE_LIST_CACHE_S` seconds (no store query per create); the admin routes drop
  it when they change the list.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from fastapi import Request

from api.auth import Principal
from api.recording import recorder_for
from otp.domain import ChannelStep, Mode, WebhookEvent, WebhookEventType, webhook_message_id
from otp.domain.destinations import mask
from otp.store import Store
from otp.store import lockouts as store_lockouts
from otp.store import safe_list as store_safe_list
from otp.store.events import destination_hash
from otp.store.tables import Lockout

logger = logging.getLogger("otp.api")

SAFE_LIST_CACHE_S = 5.0
_CACHE_MAX = 10_000


def lockout_data(lockout: Lockout) -> dict[str, object]:
    """What a `destination.locked` event says: never the destination itself."""
    return {
        "lockout_id": lockout.id,
        "to": lockout.to_masked,
        "channel": lockout.channel,
        "failed_count": lockout.failed_count,
        "since": lockout.since,
        "until": lockout.until,
    }


async def record_lockouts(
    request: Request,
    store: Store,
    principal: Principal,
    verification_id: str,
    *,
    reached: Sequence[tuple[str, int]],
    counters: Sequence[str],
    hashes: Sequence[str],
    steps: Sequence[ChannelStep],
    code_secret: bytes,
) -> list[Lockout]:
    """Write a lockout row for each counter that just reached the cap and tell the
    application's webhook endpoints. `steps` (the plan, when known) give the masked
    destination and channel of each hash."""
    by_key = dict(zip(counters, hashes, strict=True))
    known = {destination_hash(code_secret, step.to): step for step in steps}
    written: list[Lockout] = []
    for key, count in reached:
        dst_hash = by_key.get(key)
        if dst_hash is None:
            continue
        step = known.get(dst_hash)
        try:
            lockout = await store_lockouts.record_lockout(
                store,
                application_id=principal.application_id,
                mode=principal.mode.value,
                destination_hash=dst_hash,
                to_masked=mask(step.to) if step is not None else "***",
                channel=step.channel.value if step is not None else None,
                failed_count=count,
                duration_s=principal.risk.lockout_duration_s,
            )
        except Exception:
            logger.warning(
                "lockout not recorded; the counter still refuses the destination",
                extra={"verification_id": verification_id},
                exc_info=True,
            )
            continue
        written.append(lockout)
        logger.warning(
            "destination locked out",
            extra={
                "event": "destination.locked",
                "verification_id": verification_id,
                "application_id": principal.application_id,
                "mode": principal.mode.value,
                "lockout_id": lockout.id,
                "to": lockout.to_masked,
                "failed_count": count,
                "until": lockout.until.isoformat(),
            },
        )
        await _emit_locked(request, lockout, verification_id)
    return written


async def _emit_locked(request: Request, lockout: Lockout, verification_id: str) -> None:
    recorder = recorder_for(request)
    if recorder is None or recorder.dispatch is None:
        return
    event = WebhookEvent(
        id=webhook_message_id(lockout.id, "locked"),
        type=WebhookEventType.DESTINATION_LOCKED,
        application_id=lockout.application_id,
        mode=Mode(lockout.mode),
        occurred_at=lockout.since,
        verification_id=verification_id,
        data=lockout_data(lockout),
    )
    try:
        await recorder.dispatch(event)
    except Exception:
        logger.warning(
            "destination.locked webhook not dispatched",
            extra={"verification_id": verification_id, "lockout_id": lockout.id},
            exc_info=True,
        )


# --------------------------------------------------------------------- safe list cache
async def safe_hashes(request: Request, store: Store, principal: Principal) -> frozenset[str]:
    """The safe list of the caller's application and mode, from a short cache."""
    cache: dict[tuple[str, str], tuple[float, frozenset[str]]] = (
        request.app.state.__dict__.setdefault("safe_list_cache", {})
    )
    scope = (principal.application_id, principal.mode.value)
    now = time.monotonic()
    cached = cache.get(scope)
    if cached is not None and now - cached[0] < SAFE_LIST_CACHE_S:
        return cached[1]
    found = await store_safe_list.safe_hashes(store, application_id=scope[0], mode=scope[1])
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    cache[scope] = (now, found)
    return found


def forget_safe_list(request: Request) -> None:
    """This process's creates see a safe-list change at once (others within a few seconds)."""
    request.app.state.__dict__.pop("safe_list_cache", None)
