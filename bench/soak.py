"""Soak: full verifications at a fixed share of the measured capacity, watching memory.

    python -m bench.soak                              # capacity, then 5 minutes at 70 %
    python -m bench.soak --duration 60 --rate 5       # a known rate, one minute

It starts its own dev server (SQLite file), worker and API like the drills, measures
capacity with a closed loop at concurrency C (full verifications: create -> read the
code from the sandbox inbox -> check), then starts verifications at `--fraction` of that
rate (open loop: arrivals do not wait for answers) for `--duration` seconds, sampling
the RSS of the API, worker and server every few seconds.

It prints the achieved rate, errors by kind, create and check latency per minute, and
memory at the end of the first minute (the warm-up) and at the end. Exit status 1 if
any verification failed or the API's or worker's memory grew by 10 % or more after the
warm-up; the server's growth is printed for information (it is the engine's).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bench.drills import Stack
from bench.run import Proc, Samples, closed_loop, pct, phone_numbers, service_iteration

MAX_GROWTH = 0.10
SAMPLE_EVERY_S = 5.0


@dataclass
class Outcome:
    started_at: float  # seconds since the soak began
    create_ms: float = float("nan")
    check_ms: float = float("nan")
    error: str | None = None


@dataclass
class Soak:
    outcomes: list[Outcome] = field(default_factory=list)
    memory: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    max_in_flight: int = 0
    max_lateness_s: float = 0.0
    wall_s: float = 0.0


def error_kind(exc: BaseException) -> str:
    text = str(exc)
    if text.startswith(("create answered", "check answered")):
        return " ".join(text.split()[:3]).rstrip(":")
    return type(exc).__name__


async def sample_memory(procs: list[Proc], soak: Soak, t0: float, stop: asyncio.Event) -> None:
    while True:
        soak.memory.append((time.monotonic() - t0, {p.name: p.rss_mb() for p in procs}))
        try:
            await asyncio.wait_for(stop.wait(), SAMPLE_EVERY_S)
            soak.memory.append((time.monotonic() - t0, {p.name: p.rss_mb() for p in procs}))
            return
        except TimeoutError:
            pass


async def soak_at(
    rate: float,
    duration_s: float,
    iteration: Callable[[int, Samples], Awaitable[None]],
    procs: list[Proc],
) -> Soak:
    """Start one verification every 1/rate s for duration_s; wait for them all."""
    soak = Soak()
    in_flight = 0
    t0 = time.monotonic()
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_memory(procs, soak, t0, stop))

    async def one(i: int, outcome: Outcome) -> None:
        nonlocal in_flight
        in_flight += 1
        soak.max_in_flight = max(soak.max_in_flight, in_flight)
        samples = Samples()
        try:
            await iteration(i, samples)
            outcome.create_ms, outcome.check_ms = samples.create_ms[0], samples.check_ms[0]
        except Exception as exc:
            outcome.error = error_kind(exc)
            if sum(o.error is not None for o in soak.outcomes) <= 3:
                print(f"  error: {type(exc).__name__}: {exc}", file=sys.stderr)
        finally:
            in_flight -= 1

    tasks: list[asyncio.Task[None]] = []
    total = int(rate * duration_s)
    for i in range(total):
        due = t0 + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        soak.max_lateness_s = max(soak.max_lateness_s, -delay)
        outcome = Outcome(started_at=time.monotonic() - t0)
        soak.outcomes.append(outcome)
        tasks.append(asyncio.create_task(one(i, outcome)))
    await asyncio.gather(*tasks)
    soak.wall_s = time.monotonic() - t0
    stop.set()
    await sampler
    return soak


def window_median(
    memory: list[tuple[float, dict[str, float]]], name: str, lo: float, hi: float
) -> float:
    values = [m[name] for t, m in memory if lo <= t <= hi]
    return statistics.median(values) if values else float("nan")


def lat(values: list[float]) -> str:
    return f"{pct(values, 50):.0f} / {pct(values, 95):.0f} / {pct(values, 99):.0f} ms"


async def main(args: argparse.Namespace) -> int:
    stack = Stack("soak")
    rows: list[tuple[str, str]] = []
    failures: list[str] = []
    try:
        await stack.prepare_store()
        await stack.start_server()
        async with stack.http() as http:
            await stack.start_api(http)  # first: it creates the store's tables
            stack.start_worker()
            phones = phone_numbers(2000, seed=31)
            make = service_iteration(http, phones)
            c = args.concurrency
            print(f"warming up (C={c})", file=sys.stderr)
            await closed_loop(c, c * 3, make)
            if args.rate:
                capacity = None
                rate = args.rate
            else:
                print(f"capacity: {args.capacity_n} verifications at C={c}", file=sys.stderr)
                cap = await closed_loop(c, args.capacity_n, make)
                if cap.errors:
                    failures.append(f"{cap.errors} errors while measuring capacity")
                capacity = cap.throughput
                rate = capacity * args.fraction
            print(f"soak: {rate:.1f}/s for {args.duration:.0f} s", file=sys.stderr)
            procs = [p for p in (stack.api, stack.worker, stack.server) if p is not None]
            soak = await soak_at(rate, args.duration, make, procs)
    finally:
        stack.stop_all()

    ok = [o for o in soak.outcomes if o.error is None]
    errors = Counter(o.error for o in soak.outcomes if o.error is not None)
    if capacity is not None:
        rows.append((f"capacity (closed loop, C={args.concurrency})", f"{capacity:.1f} verif/s"))
    rows.append(
        (
            "target rate",
            f"{rate:.1f} verif/s ({args.fraction:.0%})" if capacity else f"{rate:.1f} verif/s",
        )
    )
    rows.append(("started / approved", f"{len(soak.outcomes)} / {len(ok)}"))
    rows.append(("achieved rate", f"{len(soak.outcomes) / args.duration:.2f} verif/s started, "
                 f"all answered after {soak.wall_s:.0f} s"))  # fmt: skip
    rows.append(("open loop", f"at most {soak.max_in_flight} in flight, "
                 f"starts late by at most {soak.max_lateness_s * 1000:.0f} ms"))  # fmt: skip
    rows.append(("errors", ", ".join(f"{k} x{n}" for k, n in errors.items()) or "0"))
    if errors:
        failures.append(f"{sum(errors.values())} verifications failed")
    for minute in range(int(args.duration // 60) + (1 if args.duration % 60 else 0)):
        batch = [o for o in ok if minute * 60 <= o.started_at < (minute + 1) * 60]
        if batch:
            rows.append((f"minute {minute + 1}: create / check p50/p95/p99",
                         f"{lat([o.create_ms for o in batch])}  |  "
                         f"{lat([o.check_ms for o in batch])}  (n={len(batch)})"))  # fmt: skip
    rows.append(("overall: create p50/p95/p99", lat([o.create_ms for o in ok])))
    rows.append(("overall: check  p50/p95/p99", lat([o.check_ms for o in ok])))

    warm = min(args.warmup, args.duration / 2)
    end = soak.memory[-1][0] if soak.memory else 0.0
    window = max(SAMPLE_EVERY_S * 3, 20.0)
    for name in ("api-1", "worker-1", "temporal-1"):
        base = window_median(soak.memory, name, warm, warm + window)
        last = window_median(soak.memory, name, end - window, end)
        peak = max((m[name] for _, m in soak.memory), default=float("nan"))
        growth = (last - base) / base if base else float("nan")
        role = name.split("-")[0]
        rows.append((f"RSS {role}: after warm-up -> end (peak)",
                     f"{base:.0f} -> {last:.0f} MB ({growth:+.1%}; peak {peak:.0f} MB)"))  # fmt: skip
        if role != "temporal" and not growth < MAX_GROWTH:
            failures.append(f"{role} memory grew {growth:.1%} (limit {MAX_GROWTH:.0%})")

    width = max(len(n) for n, _ in rows)
    print()
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    for why in failures:
        print(f"FAIL: {why}")
    print("soak:", "FAIL" if failures else "PASS")
    return 1 if failures else 0


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--concurrency", "-c", type=int, default=20)
    p.add_argument("--capacity-n", type=int, default=500, help="verifications to measure capacity")
    p.add_argument("--fraction", type=float, default=0.7, help="share of capacity to soak at")
    p.add_argument("--rate", type=float, help="soak at this rate (verif/s); skips the capacity run")
    p.add_argument("--duration", type=float, default=300.0, help="seconds of soak")
    p.add_argument("--warmup", type=float, default=60.0, help="seconds before the memory baseline")
    return p.parse_args()


if __name__ == "__main__":
    from otp.process import run_and_exit

    _args = parse_args()
    run_and_exit(lambda: asyncio.run(main(_args)))
