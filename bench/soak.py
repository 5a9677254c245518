"""Soak: full verifications at a fixed share of the measured capacity, watching memory.

    python -m bench.soak                              # capacity, then 5 minutes at 70 %
    python -m bench.soak --rate 5 --duration 60       # a known rate, one minute

It starts its own dev server (SQLite file), worker (`python worker.py`) and API
(`otp api`) on free loopback ports, in production mode with the sandbox provider and
the default application's fraud limits off, like the benchmark. Then:

1. capacity: a closed loop of full verifications (create -> read the code from the
   sandbox inbox -> check) at concurrency C for `--capacity-seconds`, after a short
   warm-up; `--rate` skips it;
2. soak: verifications started at `--fraction` of that capacity (open loop: arrivals do
   not wait for answers) for `--duration` seconds; each must end `approved` within
   `--timeout` seconds; the RSS of the API, worker and server is sampled every few
   seconds.

It prints capacity, target and achieved rate, the open loop's backlog, errors by kind,
create and check p50/p95/p99 per minute and overall, and each process's RSS after the
warm-up (`--warmup`, inside the soak) and at the end. Exit status 1 if any verification
failed, the approved rate fell below 95 % of the target, or the API's or worker's RSS
grew by 10 % or more after the warm-up; the server's growth is information only (it is
the engine's).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import math
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.drills import Stack
from bench.run import (
    CpuMeter,
    Proc,
    Samples,
    closed_loop,
    history_diagnosis,
    open_loop,
    pct,
    phone_numbers,
    service_iteration,
)

MAX_GROWTH = 0.10
MIN_KEEP_UP = 0.95
ROLES = ("api", "worker", "temporal")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
Iteration = Callable[[int, Samples], Awaitable[None]]


# ------------------------------------------------------------------------- answers
@dataclass(frozen=True)
class Answer:
    """One HTTP answer within a verification: `POST /v1/verifications/{id}/check` 200 ..."""

    route: str
    status_code: int
    verification_status: str | None = None


# The answers of the verification the current task is driving (None outside one).
_trail: contextvars.ContextVar[list[Answer] | None] = contextvars.ContextVar("trail", default=None)


def route_of(request: httpx.Request) -> str:
    parts = ["{id}" if p.startswith("ver_") else p for p in request.url.path.split("/")]
    return f"{request.method} {'/'.join(parts)}"


async def record_answer(response: httpx.Response) -> None:
    """httpx response hook: note every answer given to a verification being driven."""
    trail = _trail.get()
    if trail is None:
        return
    route = route_of(response.request)
    status = None
    if route.endswith("/check") and response.status_code == 200:
        await response.aread()
        status = str(response.json().get("status"))
    trail.append(Answer(route, response.status_code, status))


def error_kind(exc: BaseException, trail: list[Answer], timeout_s: float) -> str:
    """What went wrong, from the exception and the last answer the verification got."""
    last = trail[-1] if trail else None
    if isinstance(exc, TimeoutError):
        after = f" (last answer: {last.route} {last.status_code})" if last else ""
        return f"no outcome within {timeout_s:g} s{after}"
    if isinstance(exc, httpx.RequestError):
        return f"{type(exc).__name__} on {route_of(exc.request)}"
    if last is not None and not 200 <= last.status_code < 300:
        return f"{last.route} -> {last.status_code}"
    if last is not None and last.verification_status not in (None, "approved"):
        return f"{last.route} -> 200, status {last.verification_status}"
    return f"{type(exc).__name__}: {str(exc)[:80]}"


# ---------------------------------------------------------------------------- soak
@dataclass
class Outcome:
    due_s: float  # seconds since the soak began
    started_s: float = math.nan
    finished_s: float = math.nan
    create_ms: float = math.nan
    check_ms: float = math.nan
    inbox_reads: int = 0
    error: str | None = None


@dataclass
class Sample:
    t_s: float
    rss_mb: dict[str, float]
    cpu_s: dict[str, float]  # the stack's processes and the load generator, so far
    machine: tuple[float, float]  # (busy, all) CPU seconds of the whole machine so far


def machine_cpu_s() -> tuple[float, float]:
    """(busy, all) CPU seconds of every core since boot, whoever spent them (/proc/stat)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks) - idle) / CLOCK_TICKS, sum(ticks) / CLOCK_TICKS


@dataclass
class Soak:
    rate: float
    duration_s: float
    outcomes: list[Outcome] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: Counter[int] = field(default_factory=Counter)  # per minute
    wall_s: float = 0.0
    cpu: CpuMeter | None = None

    @property
    def arrivals_end_s(self) -> float:
        return max((o.started_s for o in self.outcomes), default=0.0)

    def approved(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.error is None]

    def errors(self) -> Counter[str]:
        return Counter(o.error for o in self.outcomes if o.error is not None)


async def sample(
    soak: Soak, procs: dict[str, Proc], t0: float, every_s: float, stop: asyncio.Event
) -> None:
    while True:
        soak.samples.append(
            Sample(
                time.perf_counter() - t0,
                {role: p.rss_mb() for role, p in procs.items()},
                {role: p.cpu_s() for role, p in procs.items()} | {"load": time.process_time()},
                machine_cpu_s(),
            )
        )
        if stop.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)


async def run_soak(
    rate: float,
    duration_s: float,
    make: Iteration,
    procs: dict[str, Proc],
    *,
    timeout_s: float,
    sample_every_s: float,
) -> Soak:
    """Start one verification every 1/rate s for duration_s (open loop); wait for all."""
    total = max(1, round(rate * duration_s))
    soak = Soak(rate, duration_s, [Outcome(due_s=i / rate) for i in range(total)])

    async def one(i: int, _: Samples) -> None:
        outcome = soak.outcomes[i]
        outcome.started_s = time.perf_counter() - t0
        soak.in_flight += 1
        minute = int(outcome.started_s // 60)
        soak.max_in_flight[minute] = max(soak.max_in_flight[minute], soak.in_flight)
        trail: list[Answer] = []
        token = _trail.set(trail)
        mine = Samples()
        try:
            await asyncio.wait_for(make(i, mine), timeout_s)
            outcome.create_ms, outcome.check_ms = mine.create_ms[0], mine.check_ms[0]
        except Exception as exc:
            outcome.error = error_kind(exc, trail, timeout_s)
            raise
        finally:
            outcome.inbox_reads = mine.inbox_reads
            outcome.finished_s = time.perf_counter() - t0
            soak.in_flight -= 1
            _trail.reset(token)

    stop = asyncio.Event()
    t0 = time.perf_counter()
    sampler = asyncio.create_task(sample(soak, procs, t0, sample_every_s, stop))
    with CpuMeter(list(procs.values())) as soak.cpu:
        await open_loop(rate, total, one)
    soak.wall_s = time.perf_counter() - t0
    stop.set()
    await sampler
    return soak


def first_only(
    diagnose: Callable[[str], Awaitable[None]], limit: int
) -> Callable[[str], Awaitable[None]]:
    """Diagnose the first `limit` failed verifications only."""
    seen = 0

    async def maybe(vid: str) -> None:
        nonlocal seen
        seen += 1
        if seen <= limit:
            await diagnose(vid)

    return maybe


# ------------------------------------------------------------------------- report
def lat(values: list[float]) -> str:
    return f"{pct(values, 50):.0f} / {pct(values, 95):.0f} / {pct(values, 99):.0f}"


def rss_at(samples: list[Sample], role: str, lo: float, hi: float) -> float:
    """Median RSS of the samples in [lo, hi]; the nearest sample if none is."""
    values = [m.rss_mb[role] for m in samples if lo <= m.t_s <= hi]
    if values:
        return statistics.median(values)
    if not samples:
        return math.nan
    return min(samples, key=lambda m: abs(m.t_s - (lo + hi) / 2)).rss_mb[role]


def nearest(samples: list[Sample], t_s: float) -> Sample:
    return min(samples, key=lambda m: abs(m.t_s - t_s))


def cpu_between(
    samples: list[Sample], lo: float, hi: float, verifications: int
) -> tuple[float, float, float]:
    """(stack CPU ms per verification, our cores, other cores) busy between lo and hi.

    Ours: API, worker, server and load generator; others: the rest of the machine.
    """
    if not samples:
        return math.nan, math.nan, math.nan
    a, b = nearest(samples, lo), nearest(samples, hi)
    if b.t_s <= a.t_s:
        return math.nan, math.nan, math.nan
    stack = sum(b.cpu_s[r] - a.cpu_s[r] for r in ROLES)
    ours = stack + b.cpu_s["load"] - a.cpu_s["load"]
    busy = b.machine[0] - a.machine[0]
    wall = b.t_s - a.t_s
    return 1000 * stack / max(1, verifications), ours / wall, max(0.0, busy - ours) / wall


def trend_mb_per_min(samples: list[Sample], role: str, lo: float, hi: float) -> float:
    points = [(m.t_s / 60, m.rss_mb[role]) for m in samples if lo <= m.t_s <= hi]
    if len(points) < 3:
        return math.nan
    slope, _ = statistics.linear_regression([t for t, _ in points], [r for _, r in points])
    return slope


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in [header, *rows]]  # fmt: skip
    return [line.rstrip() for line in lines]


def report(
    soak: Soak,
    capacity: Samples | None,
    args: argparse.Namespace,
    capacity_others: float,
) -> tuple[list[str], list[str]]:
    """(lines to print, failures)."""
    failures: list[str] = []
    rows: list[tuple[str, str]] = []
    ok = soak.approved()
    errors = soak.errors()
    duration = soak.duration_s

    if capacity is not None:
        rows.append((
            f"capacity (closed loop, C={args.concurrency})",
            f"{capacity.throughput:.1f} verif/s  ({capacity.done} approved in "
            f"{capacity.wall_s:.0f} s, {capacity.errors} errors; other processes kept "
            f"{capacity_others:.2f} cores busy)",
        ))  # fmt: skip
        if capacity.errors:
            failures.append(f"{capacity.errors} errors while measuring capacity")
        rows.append(("target rate", f"{soak.rate:.1f} verif/s  ({args.fraction:.0%} of capacity)"))
    else:
        rows.append(("target rate", f"{soak.rate:.1f} verif/s  (--rate)"))

    in_window = [o for o in ok if o.finished_s <= duration]
    achieved = len(in_window) / duration
    keep_up = achieved / soak.rate if soak.rate else 0.0
    rows.append((
        "achieved rate",
        f"{achieved:.2f} verif/s approved within the {duration:.0f} s window "
        f"({keep_up:.1%} of target)",
    ))  # fmt: skip
    rows.append((
        "started / approved / failed",
        f"{len(soak.outcomes)} / {len(ok)} / {sum(errors.values())}",
    ))  # fmt: skip
    late = [o.started_s - o.due_s for o in soak.outcomes]
    end = soak.arrivals_end_s
    backlog = sum(1 for o in soak.outcomes if o.finished_s > end)
    rows.append((
        "open loop lag / backlog",
        f"starts late by p99 {1000 * pct(late, 99):.0f} ms, max {1000 * max(late):.0f} ms; "
        f"at most {max(soak.max_in_flight.values(), default=0)} in flight; "
        f"{backlog} in flight at the last start, all answered {soak.wall_s - end:.1f} s later",
    ))  # fmt: skip
    if keep_up < MIN_KEEP_UP:
        failures.append(
            f"fell behind: {achieved:.2f} verif/s approved, {keep_up:.1%} of the "
            f"{soak.rate:.1f}/s target (needs {MIN_KEEP_UP:.0%})"
        )
    rows.append(("errors", ", ".join(f"{k} x{n}" for k, n in errors.most_common()) or "0"))
    if errors:
        failures.append(f"{sum(errors.values())} verifications failed")
    rows.append((
        "inbox reads / verification",
        f"{sum(o.inbox_reads for o in soak.outcomes) / max(1, len(soak.outcomes)):.1f}",
    ))  # fmt: skip
    if soak.cpu is not None:
        per = soak.cpu.per_iteration_ms(len(ok))
        rows.append((
            "CPU ms / verification",
            f"{sum(per.values()):.0f}  ("
            + ", ".join(f"{name.split('-')[0]} {ms:.0f}" for name, ms in per.items())
            + ")",
        ))  # fmt: skip

    width = max(len(n) for n, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]

    warm = min(args.warmup, duration / 2)
    minutes = math.ceil(duration / 60)
    per_minute: list[list[str]] = []
    for m in range(minutes):
        lo, hi = 60.0 * m, min(60.0 * (m + 1), duration)
        started = [o for o in soak.outcomes if lo <= o.due_s < hi]
        good = [o for o in started if o.error is None]
        done_here = sum(1 for o in ok if lo <= o.finished_s < hi)
        rss = " / ".join(f"{rss_at(soak.samples, r, hi - 5, hi + 1):.0f}" for r in ROLES)
        cpu_ms, ours, others = cpu_between(soak.samples, lo, hi, done_here)
        per_minute.append([
            f"{m + 1}" + (" warm-up" if hi <= warm else ""),
            str(len(started)),
            str(len(started) - len(good)),
            f"{done_here / (hi - lo):.1f}",
            str(soak.max_in_flight[m]),
            lat([o.create_ms for o in good]),
            lat([o.check_ms for o in good]),
            f"{cpu_ms:.0f}",
            f"{ours:.2f} / {others:.2f}",
            rss,
        ])  # fmt: skip
    all_ms, all_ours, all_others = cpu_between(soak.samples, 0, soak.wall_s, len(ok))
    per_minute.append([
        "all", str(len(soak.outcomes)), str(sum(errors.values())),
        f"{len(ok) / soak.wall_s if soak.wall_s else 0:.1f}",
        str(max(soak.max_in_flight.values(), default=0)),
        lat([o.create_ms for o in ok]), lat([o.check_ms for o in ok]),
        f"{all_ms:.0f}", f"{all_ours:.2f} / {all_others:.2f}", "",
    ])  # fmt: skip
    lines += ["", *table(
        ["minute", "started", "failed", "approved/s", "max in flight",
         "create p50/p95/p99 ms", "check p50/p95/p99 ms", "stack CPU ms/verif",
         "cores ours/others", "RSS api/worker/server MB"],
        per_minute,
    )]  # fmt: skip

    window = min(15.0, (duration - warm) / 2)
    memory_rows: list[list[str]] = []
    for role in ROLES:
        base = rss_at(soak.samples, role, warm, warm + window)
        last = rss_at(soak.samples, role, end - window, end)
        peak = max((m.rss_mb[role] for m in soak.samples), default=math.nan)
        growth = (last - base) / base if base else math.nan
        slope = trend_mb_per_min(soak.samples, role, warm, end)
        judged = role != "temporal"
        verdict = ("ok" if growth < MAX_GROWTH else "GREW") if judged else "info only"
        memory_rows.append([
            role, f"{base:.1f}", f"{last:.1f}", f"{growth:+.1%}", f"{slope:+.2f}",
            f"{peak:.1f}", verdict,
        ])  # fmt: skip
        if judged and not growth < MAX_GROWTH:
            failures.append(
                f"{role} RSS grew {growth:+.1%} after the warm-up (limit {MAX_GROWTH:.0%})"
            )
    lines += ["", *table(
        ["RSS (MB)", f"after warm-up ({warm:.0f} s)", f"end ({end:.0f} s)", "growth",
         "trend MB/min", "max", f"< {MAX_GROWTH:.0%}"],
        memory_rows,
    )]  # fmt: skip
    lines.append(
        f"(median of the samples taken every {args.sample_every:.0f} s in the {window:.0f} s "
        "after the warm-up and before the last start; trend: least squares over that span)"
    )
    return lines, failures


# --------------------------------------------------------------------------- main
async def main(args: argparse.Namespace) -> int:
    stack = Stack("soak")
    capacity: Samples | None = None
    others = math.nan
    try:
        await stack.prepare_store()
        await stack.start_server()
        async with httpx.AsyncClient(
            base_url=stack.base_url,
            headers={"Authorization": f"Bearer {stack.key}"},
            timeout=30,
            limits=httpx.Limits(max_connections=200),
            event_hooks={"response": [record_answer]},
        ) as http:
            # API first: both create the store's tables at start (see the drills).
            await stack.start_api(http)
            stack.start_worker()
            diagnose = first_only(history_diagnosis(await stack.client()), 3)
            make: Iteration = service_iteration(http, phone_numbers(2000, seed=31), diagnose)
            c = args.concurrency
            print(f"warming up (C={c}, 5 s)", file=sys.stderr)
            await closed_loop(c, 10**9, make, seconds=5)
            if args.rate:
                rate = args.rate
            else:
                print(f"capacity: C={c} for {args.capacity_seconds:.0f} s", file=sys.stderr)
                busy0 = machine_cpu_s()[0]
                with CpuMeter(stack.live()) as cap_cpu:
                    capacity = await closed_loop(c, 10**9, make, seconds=args.capacity_seconds)
                ours = sum(cap_cpu.spent.values())
                others = max(0.0, machine_cpu_s()[0] - busy0 - ours) / capacity.wall_s
                rate = capacity.throughput * args.fraction
            print(f"soak: {rate:.1f}/s for {args.duration:.0f} s", file=sys.stderr)
            assert stack.api and stack.worker and stack.server
            procs = {"api": stack.api, "worker": stack.worker, "temporal": stack.server}
            soak = await run_soak(
                rate,
                args.duration,
                make,
                procs,
                timeout_s=args.timeout,
                sample_every_s=args.sample_every,
            )
    finally:
        stack.stop_all()

    lines, failures = report(soak, capacity, args, others)
    print()
    print("\n".join(lines))
    for why in failures:
        print(f"FAIL: {why}")
    print("soak:", "FAIL" if failures else "PASS")
    return 1 if failures else 0


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--concurrency", "-c", type=int, default=20, help="capacity run's clients")
    p.add_argument("--capacity-seconds", type=float, default=45.0, help="capacity run length")
    p.add_argument("--fraction", type=float, default=0.7, help="share of capacity to soak at")
    p.add_argument("--rate", type=float, help="soak at this rate (verif/s); skips the capacity run")
    p.add_argument("--duration", type=float, default=300.0, help="seconds of soak")
    p.add_argument("--warmup", type=float, default=60.0, help="seconds before the memory baseline")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds one verification may take")
    p.add_argument("--sample-every", type=float, default=5.0, help="seconds between RSS samples")
    return p.parse_args()


if __name__ == "__main__":
    from otp.process import run_and_exit

    _args = parse_args()
    run_and_exit(lambda: asyncio.run(main(_args)))
