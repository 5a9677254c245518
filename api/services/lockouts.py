"""Lockouts after too many failed checks: recording them, listing and lifting them.

The failed-check counter in the limiter refuses a destination while it is at
`max_failed_checks`; the `lockouts` rows say which destination it is (masked) and since
when.

- When a wrong code brings a destination's counter to the cap, the check records the
  lockout (`otp.store.lockouts`, masked) and emits a `destination.locked` webhook event:
  best effort, the counter alone refuses the destination whether or not the row was
  written.
- A lockout is shown only while both agree (row in force, counter at the cap); an
  unlock resets the counter first (that is what lets the destination through again) and
  then lifts the rows, so a lost or late row write never keeps a destination locked.

The admin API and the `otp risk` CLI share the listing and the unlock.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from api.auth import Principal
from api.problems import LockoutNotFound, field_error, invalid
from api.services.applications import require_application
from otp.domain import (
    Channel,
    ChannelStep,
    Mode,
    WebhookEvent,
    WebhookEventType,
    webhook_message_id,
)
from otp.domain.destinations import (
    InvalidDestinationError,
    looks_like_email,
    mask,
    parse_destination,
)
from otp.risk.limits import Limiter
from otp.risk.policy import RiskSettings, failed_checks_key
from otp.store import Store
from otp.store import lockouts as store_lockouts
from otp.store.events import EventRecorder, destination_hash
from otp.store.tables import Lockout

logger = logging.getLogger("otp.api")


@dataclass(frozen=True)
class Lifted:
    """One mode's lockout lifted: its row (None: a counter at the cap with no row)."""

    mode: Mode
    failed_count: int
    lockout: Lockout | None = None


async def active_lockouts(
    store: Store,
    limiter: Limiter,
    risk: RiskSettings,
    *,
    application_id: str,
    mode: Mode | None = None,
    limit: int = 100,
    after: str | None = None,
) -> tuple[list[Lockout], str | None]:
    """A page of lockouts in force and the id to page on from (None: the last page)."""
    rows = await store_lockouts.list_active_lockouts(
        store,
        application_id=application_id,
        mode=mode.value if mode else None,
        limit=limit + 1,
        after=after,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    shown = []
    for row in rows:
        key = failed_checks_key(application_id, Mode(row.mode), row.destination_hash)
        if await limiter.get(key) >= risk.max_failed_checks:
            shown.append(row)
    return shown, rows[-1].id if more and rows else None


async def unlock(
    store: Store,
    limiter: Limiter,
    risk: RiskSettings,
    *,
    application_id: str,
    destination_hash: str,
    modes: Sequence[Mode],
    lifted_by: str,
) -> list[Lifted]:
    """Forget the destination's failed checks and lift its lockouts in `modes`; what was
    lifted (empty: it was not locked out)."""
    counted: dict[Mode, int] = {}
    for mode in modes:
        key = failed_checks_key(application_id, mode, destination_hash)
        value = await limiter.get(key)
        if value >= risk.max_failed_checks:
            counted[mode] = value
            await limiter.reset(key)
    rows = await store_lockouts.lift_lockouts(
        store,
        application_id=application_id,
        modes=[m.value for m in modes],
        destination_hash=destination_hash,
        lifted_by=lifted_by,
    )
    lifted: list[Lifted] = []
    for row in rows:
        mode = Mode(row.mode)
        if mode not in counted:  # a row whose counter is not at the cap: reset it anyway
            await limiter.reset(failed_checks_key(application_id, mode, destination_hash))
        lifted.append(Lifted(mode, row.failed_count, row))
    recorded = {item.mode for item in lifted}
    lifted += [Lifted(m, count) for m, count in counted.items() if m not in recorded]
    return lifted


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
    recorder: EventRecorder | None,
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
        await _emit_locked(recorder, lockout, verification_id)
    return written


async def _emit_locked(
    recorder: EventRecorder | None, lockout: Lockout, verification_id: str
) -> None:
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


def normalized_destination(to: str) -> str:
    """The destination as creates normalise it (E.164 or lower-cased email); 422 if not one."""
    channel = Channel.EMAIL if looks_like_email(to) else Channel.SMS
    try:
        return parse_destination(to, channel).value
    except InvalidDestinationError as exc:
        raise invalid([field_error("#/to", str(exc))]) from None


async def list_lockouts(
    store: Store,
    limiter: Limiter,
    *,
    application_id: str,
    mode: Mode | None,
    limit: int,
    after: str | None,
) -> tuple[list[Lockout], str | None]:
    """`active_lockouts` of a known application (404 for an unknown one)."""
    application = await require_application(store, application_id)
    return await active_lockouts(
        store,
        limiter,
        application.risk,
        application_id=application_id,
        mode=mode,
        limit=limit,
        after=after,
    )


async def unlock_destination(
    store: Store,
    limiter: Limiter,
    *,
    secret: bytes,
    application_id: str,
    to: str,
    mode: Mode | None,
    lifted_by: str,
) -> tuple[str, list[Lifted]]:
    """`unlock` of a destination given in clear, in `mode` (None: both); the destination
    masked and what was lifted. 404 when it was not locked out."""
    application = await require_application(store, application_id)
    normalized = normalized_destination(to)
    lifted = await unlock(
        store,
        limiter,
        application.risk,
        application_id=application_id,
        destination_hash=destination_hash(secret, normalized),
        modes=[mode] if mode is not None else [Mode.TEST, Mode.LIVE],
        lifted_by=lifted_by,
    )
    if not lifted:
        raise LockoutNotFound()
    logger.info(
        "destination unlocked",
        extra={
            "event": "destination.unlocked",
            "application_id": application_id,
            "to": mask(normalized),
            "modes": sorted(item.mode.value for item in lifted),
            "operator": lifted_by,
        },
    )
    return mask(normalized), lifted
