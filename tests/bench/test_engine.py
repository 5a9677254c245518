"""bench.engine's shapes have the histories it claims: the floor's, and in the end the
service's own happy path (6 actions, 20 events, as `bench.run` counts on the service)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.engine import measure


async def test_the_first_and_last_shapes_have_the_floor_and_service_histories(
    tmp_path: Path,
) -> None:
    args = argparse.Namespace(concurrency=2, iterations=4)
    floor = await measure("floor", args, tmp_path)
    last = await measure("summaries", args, tmp_path)

    # Start, activity, update. The floor sends its update right after the start: it lands
    # in the activity's workflow task (13 events) or, when the activity was quicker, in
    # a task of its own (16).
    assert floor[4] == 3 and floor[5] in (13, 16)
    assert last[4:] == (6, 20)  # + timer, upsert, record marker
    for row in (floor, last):
        assert row[1] > 0 and row[3] > 0  # server CPU was read, iterations completed
