"""The sliding-window arithmetic both backends share (the Redis script mirrors it in Lua).

A hit recorded at `at` counts under a limit of window `w` while `at > now - w`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from otp.risk.limits import Decision, Hit

# (at, cost) of one recorded hit, in seconds since the epoch.
Entry = tuple[float, int]


def check_cost(cost: int) -> None:
    if cost < 1:
        raise ValueError(f"cost must be at least 1, not {cost}")


def key_windows(hits: Sequence[Hit]) -> dict[str, int]:
    """Each distinct key with the longest window any of its limits uses: a key named by
    two limits of one call (e.g. per minute and per hour) records one hit for both."""
    windows: dict[str, int] = {}
    for hit in hits:
        windows[hit.key] = max(windows.get(hit.key, 0), hit.limit.window_s)
    return windows


def in_window(entries: Sequence[Entry], now: float, window_s: int) -> list[Entry]:
    cutoff = now - window_s
    return [entry for entry in entries if entry[0] > cutoff]


def reset_after(
    entries: Sequence[Entry], *, limit: int, cost: int, now: float, window_s: int
) -> int:
    """Whole seconds until the window (its hits `entries`, oldest first) has room for `cost`."""
    need = sum(c for _, c in entries) + cost - limit
    if need <= 0:
        return 0
    if cost > limit:
        return window_s  # never: say a whole window rather than forever
    freed = 0
    for at, c in entries:
        freed += c
        if freed >= need:
            return max(1, math.ceil(at + window_s - now))
    return window_s  # pragma: no cover - need <= sum of costs whenever cost <= limit


def decide(
    hits: Sequence[Hit],
    entries: dict[str, list[Entry]],
    *,
    known: set[str],
    cost: int,
    now: float,
) -> tuple[bool, list[Decision]]:
    """Whether the hits may be recorded (every limit whose key does not already hold the
    member has room for `cost`), and the decisions as they stand once that is done.

    `entries` holds each key's hits, oldest first (any window up to the key's longest);
    `known` the keys that already hold the call's member: they are allowed and not charged.
    """
    windowed = [in_window(entries.get(h.key, []), now, h.limit.window_s) for h in hits]
    room = [
        h.key in known or sum(c for _, c in w) + cost <= h.limit.limit
        for h, w in zip(hits, windowed, strict=True)
    ]
    ok = all(room)
    decisions: list[Decision] = []
    for hit, window, allowed in zip(hits, windowed, room, strict=True):
        after = [*window, (now, cost)] if ok and hit.key not in known else window
        used = sum(c for _, c in after)
        decisions.append(
            Decision(
                limit=hit.limit,
                allowed=allowed,
                remaining=max(0, hit.limit.limit - used),
                reset_s=reset_after(
                    after, limit=hit.limit.limit, cost=cost, now=now, window_s=hit.limit.window_s
                ),
            )
        )
    return ok, decisions
