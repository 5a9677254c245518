"""Listing and lifting lockouts (the admin API and the CLI share this).

The failed-check counter in the limiter refuses a destination while it is at
`max_failed_checks`; the `lockouts` rows say which destination it is (masked) and since
when. A lockout is shown only while both agree (row in force, counter at the cap); an
unlock resets the counter first (that is what lets the destination through again) and
then lifts the rows, so a lost or late row write never keeps a destination locked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from otp.domain import Mode
from otp.risk.limits import Limiter
from otp.risk.policy import RiskSettings, failed_checks_key
from otp.store import Store
from otp.store import lockouts as store_lockouts
from otp.store.tables import Lockout


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
