"""Crash and restart drills: the service against a killed worker and a restarted dev server.

    python -m bench.drills                          # all three drills (about 4 minutes)
    python -m bench.drills --only worker-kill
    python -m bench.drills --only server-restart
    python -m bench.drills --only api-restart

Each drill starts its own Temporal dev server (SQLite file in a temp dir), worker
(`python worker.py`) and API (`otp api`) as separate processes on free loopback ports,
in test mode (sandbox provider), and prints one result table. Exit status 1 if any
drill fails.

- worker-kill: 200 verifications at mixed stages (approve after an sms->email fallback,
  wrong checks up to max_attempts, left to expire, magic-number sends that fail and fall
  back to email); the worker is killed with SIGKILL partway through the checks and a new
  one started 3 s later. Every verification must reach its expected terminal status, none
  may be lost, and the sandbox must hold at most one message per verification and channel.
- api-restart: 120 verifications, each created and checked with an Idempotency-Key by
  clients that retry what the service says is retryable (connection errors, 409 in
  flight, 429, 502-504); the API is killed with SIGKILL after 3 s and started again 2 s
  later. Every verification must be approved, every answer retryable, no key may create
  two verifications and no verification may get a second sms.
- server-restart: 30 verifications with sms (20 s) -> email and a 90 s TTL; the dev server
  is stopped with SIGTERM across the fallback point for about 5 s and started again on the
  same file and port. The worker and API must reconnect by themselves, each email fallback
  must start about 20 s after its sms (late by at most the outage plus a few seconds) and
  each verification must expire about 90 s after its creation.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import os
import re
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from bench.run import (
    BIN,
    Proc,
    dev_server_command,
    free_port,
    history_diagnosis,
    phone_numbers,
    relax_default_application,
    spawn,
    wait_until,
)
from otp.applications.keys import new_api_key
from otp.domain import Mode
from otp.security.codec import data_converter
from otp.settings import Secrets

CODE_RE = re.compile(r"\b(\d{6})\b")
MAGIC_RECEIPT_FAILED = "+15005550002"
MAGIC_INVALID = "+15005550001"


# ------------------------------------------------------------------------------- stack
@dataclass
class Stack:
    """Dev server (SQLite file), worker and API of one drill, on free loopback ports."""

    name: str
    workdir: Path = field(init=False)
    secrets: Secrets = field(init=False)
    env: dict[str, str] = field(init=False)
    address: str = field(init=False)
    key: str = field(init=False)
    base_url: str = field(init=False)
    server_args: list[str] = field(init=False)
    server: Proc | None = None
    worker: Proc | None = None
    api: Proc | None = None
    generation: Counter[str] = field(default_factory=Counter)
    retired: list[Proc] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix=f"otp-drill-{self.name}-"))
        self.secrets = Secrets(
            code_secret=base64.b64encode(os.urandom(24)),
            codec_keys={"drill": os.urandom(32)},
            codec_write_key_id="drill",
        )
        temporal_port, api_port = free_port(), free_port()
        self.address = f"127.0.0.1:{temporal_port}"
        self.key = new_api_key(Mode.TEST)
        self.base_url = f"http://127.0.0.1:{api_port}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("OTP_")},
            "OTP_ENV": "production",
            "OTP_DATA_DIR": str(self.workdir),
            "OTP_TEMPORAL_ADDRESS": self.address,
            "OTP_API_PORT": str(api_port),
            "OTP_API_KEYS": self.key,
            "OTP_CODE_SECRET": self.secrets.code_secret.decode(),
            "OTP_CODEC_KEYS": "drill:"
            + base64.b64encode(self.secrets.codec_keys["drill"]).decode(),
            "OTP_LOG_LEVEL": "WARNING",
        }
        self.server_args = dev_server_command(temporal_port, db_file=self.workdir / "temporal.db")

    @property
    def sandbox_db(self) -> Path:
        return self.workdir / "otp.db"

    def _spawn(self, role: str, args: list[str]) -> Proc:
        self.generation[role] += 1
        return spawn(f"{role}-{self.generation[role]}", args, self.env, self.workdir)

    def live(self) -> list[Proc]:
        return [p for p in (self.server, self.worker, self.api) if p is not None]

    async def prepare_store(self) -> None:
        await relax_default_application(self.sandbox_db)

    async def start_server(self) -> None:
        if self.server is not None:
            self.retired.append(self.server)
        self.server = self._spawn("temporal", self.server_args)

        async def temporal_up() -> bool:
            await Client.connect(self.address)
            return True

        await wait_until("Temporal", temporal_up, [self.server], limit_s=60)

    def start_worker(self) -> None:
        if self.worker is not None:
            self.retired.append(self.worker)
        self.worker = self._spawn("worker", [sys.executable, "worker.py"])

    async def start_api(self, http: httpx.AsyncClient) -> None:
        if self.api is not None:
            self.retired.append(self.api)
        self.api = self._spawn("api", [str(BIN / "otp"), "api"])
        await self.api_ready(http, [self.api], 60)

    async def api_ready(self, http: httpx.AsyncClient, procs: list[Proc], limit_s: float) -> None:
        async def ready() -> bool:
            return (await http.get("/readyz", timeout=2)).status_code == 200

        await wait_until("the API", ready, procs, limit_s=limit_s)

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=30,
            limits=httpx.Limits(max_connections=40),
        )

    async def client(self) -> Client:
        return await Client.connect(self.address, data_converter=data_converter(self.secrets))

    def stop_all(self) -> None:
        for p in (self.api, self.worker, self.server, *self.retired):
            if p is not None:
                p.stop()


# ---------------------------------------------------------------------------- helpers
async def bounded_gather(limit: int, jobs: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    sem = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[Any]]) -> Any:
        async with sem:
            return await job()

    return list(await asyncio.gather(*(run(j) for j in jobs)))


async def create(http: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    for _ in range(3):
        r = await http.post("/v1/verifications", json=body)
        if r.status_code == 201:
            return dict(r.json())
        if r.status_code < 500:
            break
        await asyncio.sleep(0.5)
    raise RuntimeError(f"create answered {r.status_code}: {r.text[:300]}")


async def messages(http: httpx.AsyncClient, vid: str) -> list[dict[str, Any]]:
    r = await http.get("/v1/sandbox/messages", params={"verification_id": vid})
    r.raise_for_status()
    return list(r.json()["messages"])


async def read_code(
    http: httpx.AsyncClient, vid: str, channel: str | None = None, limit_s: float = 60
) -> str:
    """The code of the newest sandbox message of `vid` (on `channel`), waiting for it."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        for m in await messages(http, vid):
            if channel is None or m["channel"] == channel:
                found = CODE_RE.search(m["body"])
                if found:
                    return found.group(1)
        await asyncio.sleep(0.25)
    raise RuntimeError(f"no {channel or 'any'} message for {vid} within {limit_s:.0f} s")


RETRIED: Counter[str] = Counter()  # retryable answers (503) that a client retried, by drill


async def check(
    http: httpx.AsyncClient, vid: str, code: str, drill: str = "", limit_s: float = 60
) -> dict[str, Any]:
    """One check, retried on 503 (the engine did not answer in time) within `limit_s`."""
    deadline = time.monotonic() + limit_s
    while True:
        r = await http.post(f"/v1/verifications/{vid}/check", json={"code": code})
        if r.status_code in (200, 409):
            return dict(r.json())
        if r.status_code != 503 or time.monotonic() > deadline:
            raise RuntimeError(f"check {vid} answered {r.status_code}: {r.text[:300]}")
        RETRIED[drill] += 1
        await asyncio.sleep(min(2.0, float(r.headers.get("Retry-After") or 1)))


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


async def get_verification(http: httpx.AsyncClient, vid: str) -> dict[str, Any] | None:
    with contextlib.suppress(httpx.HTTPError):
        r = await http.get(f"/v1/verifications/{vid}", timeout=10)
        if r.status_code == 200:
            return dict(r.json())
    return None


async def wait_terminal(
    http: httpx.AsyncClient, ids: list[str], limit_s: float
) -> dict[str, dict[str, Any] | None]:
    """Poll every verification until all are terminal or `limit_s` passes; last views."""
    views: dict[str, dict[str, Any] | None] = dict.fromkeys(ids)
    deadline = time.monotonic() + limit_s
    while True:
        todo = [v for v in ids if views[v] is None or views[v]["status"] == "pending"]  # type: ignore[index]
        if not todo or time.monotonic() > deadline:
            return views
        got = await bounded_gather(
            20,
            [lambda v=v: get_verification(http, v) for v in todo],  # type: ignore[misc]
        )
        for vid, view in zip(todo, got, strict=True):
            if view is not None:
                views[vid] = view
        await asyncio.sleep(2)


def sandbox_counts(db: Path) -> Counter[tuple[str, str]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(
            "SELECT verification_id, channel, count(*) FROM sandbox_messages "
            "GROUP BY verification_id, channel"
        ).fetchall()
    return Counter({(str(v), str(c)): int(n) for v, c, n in rows})


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class Result:
    drill: str
    passed: bool = True
    rows: list[tuple[str, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)

    def row(self, name: str, value: object) -> None:
        self.rows.append((name, str(value)))

    def fail(self, why: str) -> None:
        self.passed = False
        self.failures.append(why)


# ------------------------------------------------------------------------- worker-kill
GROUP_SIZE = 50
MAX_ATTEMPTS = 3


async def worker_kill() -> Result:
    res = Result("worker-kill")
    stack = Stack("worker-kill")
    t_start = time.monotonic()
    try:
        await stack.prepare_store()
        await stack.start_server()
        async with stack.http() as http:
            # API first: both create the store's tables at start, and two processes doing
            # that at once on a fresh SQLite file can crash one of them.
            await stack.start_api(http)
            stack.start_worker()
            diagnose = history_diagnosis(await stack.client())
            phones = phone_numbers(4 * GROUP_SIZE, seed=11)

            def email(i: int) -> str:
                return f"drill{i}@example.com"

            # expected status and label of every verification, in creation order
            bodies: list[tuple[str, dict[str, Any]]] = []
            for i in range(GROUP_SIZE):  # first, so their 60 s TTL ends earliest
                bodies.append(("expired", {"to": phones[i], "ttl_s": 60}))
            for i in range(GROUP_SIZE, 2 * GROUP_SIZE):
                bodies.append(("max_attempts_reached", {"to": phones[i], "max_attempts": 3}))
            for i in range(2 * GROUP_SIZE, 3 * GROUP_SIZE):
                plan = [
                    {"channel": "sms", "timeout_s": 5},
                    {"channel": "email", "to": email(i), "timeout_s": 120},
                ]
                bodies.append(("approved", {"to": phones[i], "channels": plan}))
            for i in range(3 * GROUP_SIZE, 4 * GROUP_SIZE):
                magic = MAGIC_RECEIPT_FAILED if i % 2 else MAGIC_INVALID
                plan = [
                    {"channel": "sms", "timeout_s": 60},
                    {"channel": "email", "to": email(i), "timeout_s": 120},
                ]
                bodies.append(("approved-after-fallback", {"to": magic, "channels": plan}))

            t0 = time.monotonic()
            created = await bounded_gather(
                20,
                [lambda b=b: create(http, b) for _, b in bodies],  # type: ignore[misc]
            )
            ids = [c["id"] for c in created]
            expected = {vid: label for vid, (label, _) in zip(ids, bodies, strict=True)}
            by_label: dict[str, list[str]] = {}
            for vid, label in expected.items():
                by_label.setdefault(label, []).append(vid)
            res.row("created", f"{len(ids)} in {time.monotonic() - t0:.1f} s")

            # Before the kill: every wrong-check verification gets one wrong check, the first
            # half of them all of theirs.
            wrong_ids = by_label["max_attempts_reached"]
            codes = dict(
                zip(
                    wrong_ids,
                    await bounded_gather(
                        20,
                        [lambda v=v: read_code(http, v) for v in wrong_ids],  # type: ignore[misc]
                    ),
                    strict=True,
                )
            )
            used = Counter[str]()
            finished_early: dict[str, str] = {}

            async def wrong_checks(vid: str, n: int) -> None:
                for _ in range(n):
                    before = RETRIED[res.drill]
                    answer = await check(http, vid, wrong(codes[vid]), res.drill)
                    used[vid] += 1
                    k = used[vid]
                    retried = RETRIED[res.drill] != before
                    # The k-th wrong check must leave MAX_ATTEMPTS - k; a finished answer is
                    # right only for the last one (its first try, cut off by a 503, counted).
                    if "status_of_verification" in answer:
                        if k < MAX_ATTEMPTS:
                            finished_early[vid] = f"check {k} answered 409 (retried={retried})"
                    elif answer["attempts_remaining"] != MAX_ATTEMPTS - k:
                        finished_early[vid] = (
                            f"check {k} left {answer['attempts_remaining']} (retried={retried})"
                        )

            half = len(wrong_ids) // 2
            await bounded_gather(
                20,
                [
                    lambda v=v, n=(MAX_ATTEMPTS if k < half else 1): wrong_checks(v, n)  # type: ignore[misc]
                    for k, v in enumerate(wrong_ids)
                ],
            )
            pre_kill_checks = sum(used.values())

            assert stack.worker is not None
            if stack.worker.popen.poll() is not None:
                raise SystemExit(f"the first worker exited before the kill; see {stack.worker.log}")
            t_kill = time.monotonic()
            stack.worker.popen.kill()
            stack.worker.popen.wait()
            res.row("kill -9 worker at", f"{t_kill - t0:.1f} s after first create")
            await asyncio.sleep(3)
            stack.start_worker()

            # After the restart: the remaining wrong checks, then the approvals by email.
            await bounded_gather(
                20,
                [
                    lambda v=v: wrong_checks(v, MAX_ATTEMPTS - used[v])  # type: ignore[misc]
                    for v in wrong_ids
                ],
            )
            res.row("wrong checks", f"{pre_kill_checks} before kill, "
                    f"{sum(used.values()) - pre_kill_checks} after")  # fmt: skip
            res.row("wrong checks counted more than once", len(finished_early))
            if finished_early:
                res.findings.append(
                    f"{len(finished_early)} wrong checks were counted more than once, e.g. "
                    f"{list(finished_early.items())[:3]}"
                )

            async def approve(vid: str) -> str:
                try:
                    code = await read_code(http, vid, channel="email", limit_s=60)
                except RuntimeError as exc:
                    return f"{exc}"
                answer = await check(http, vid, code, res.drill)
                return str(answer.get("status") or answer.get("status_of_verification"))

            to_approve = by_label["approved"] + by_label["approved-after-fallback"]
            approvals = await bounded_gather(
                20,
                [lambda v=v: approve(v) for v in to_approve],  # type: ignore[misc]
            )
            bad_approvals = [
                (v, a) for v, a in zip(to_approve, approvals, strict=True) if a != "approved"
            ]
            for v, a in bad_approvals[:5]:
                res.findings.append(f"check of {v} by its email code answered: {a}")

            # Every verification terminal (the 60 s TTL ones end about 60 s after t0).
            views = await wait_terminal(http, ids, limit_s=max(30.0, t0 + 100 - time.monotonic()))
            res.row("all terminal after", f"{time.monotonic() - t0:.1f} s")
            res.row("checks answered 503, retried", RETRIED[res.drill])

            lost = [v for v in ids if views[v] is None]
            res.row("readable", f"{len(ids) - len(lost)} of {len(ids)}")
            if lost:
                res.fail(f"{len(lost)} verifications not readable, e.g. {lost[:3]}")

            outcome: Counter[str] = Counter()
            odd_deliveries: list[str] = []
            wrong_status: list[tuple[str, str, str]] = []
            for vid, label in expected.items():
                view = views[vid]
                if view is None:
                    continue
                status = view["status"]
                ok = status == label.removesuffix("-after-fallback")
                if ok and label == "approved-after-fallback":
                    by_channel = {d["channel"]: d for d in view["deliveries"]}
                    sms, mail = by_channel.get("sms"), by_channel.get("email")
                    ok = sms is not None and mail is not None and view["current_step"] == 1
                    if ok and sms is not None and sms["status"] != "failed":
                        odd_deliveries.append(f"{vid} sms step {sms['status']}/{sms['error_type']}")
                if ok and label.startswith("approved"):
                    mail = {d["channel"]: d for d in view["deliveries"]}.get("email")
                    if mail is not None and mail["status"] == "failed":
                        odd_deliveries.append(
                            f"{vid} email step failed/{mail['error_type']} (its code approved)"
                        )
                if ok:
                    outcome[label] += 1
                else:
                    deliveries = [
                        (d["channel"], d["kind"], d["status"], d.get("error_type"))
                        for d in view["deliveries"]
                    ]
                    wrong_status.append(
                        (vid, label, f"{status} ({view.get('reason')}), step "
                         f"{view['current_step']}, deliveries {deliveries}")
                    )  # fmt: skip
            for label in ("approved", "max_attempts_reached", "expired", "approved-after-fallback"):
                res.row(f"{label}", f"{outcome[label]} of {len(by_label[label])}")
            res.row("delivery records inconsistent", len(odd_deliveries))
            if odd_deliveries:
                res.findings.append(
                    f"{len(odd_deliveries)} delivery records contradict what happened, e.g. "
                    f"{odd_deliveries[:4]}"
                )
            if wrong_status:
                res.fail(f"{len(wrong_status)} ended in an unexpected state")
                for vid, label, got in wrong_status[:5]:
                    res.findings.append(f"{vid}: expected {label}, got {got}")
                for vid, _, _ in wrong_status[:2]:
                    await diagnose(vid)

            counts = sandbox_counts(stack.sandbox_db)
            dupes = {k: n for k, n in counts.items() if k[0] in expected and n > 1}
            res.row("sandbox messages", sum(n for k, n in counts.items() if k[0] in expected))
            res.row("duplicate sandbox messages", sum(n - 1 for n in dupes.values()))
            if dupes:
                res.fail(f"{len(dupes)} (verification, channel) pairs with >1 sandbox message")
                for (vid, channel), n in list(dupes.items())[:5]:
                    res.findings.append(f"{vid} {channel}: {n} sandbox messages")
            restarted = stack.worker
            if restarted is not None and restarted.popen.poll() is not None:
                res.fail(f"restarted worker exited; see {restarted.log}")
    except (Exception, SystemExit) as exc:
        res.fail(f"drill aborted: {type(exc).__name__}: {exc}")
    finally:
        stack.stop_all()
    res.row("wall time", f"{time.monotonic() - t_start:.1f} s")
    res.row("logs", str(stack.workdir))
    return res


# ----------------------------------------------------------------------- server-restart
RESTART_COUNT = 30
FALLBACK_S = 20
TTL_S = 90
OUTAGE_S = 5.0
STOP_AT_S = 16.0  # after the first create: the outage spans the 20 s fallback point


async def server_restart() -> Result:
    res = Result("server-restart")
    stack = Stack("server-restart")
    t_start = time.monotonic()
    try:
        await stack.prepare_store()
        await stack.start_server()
        async with stack.http() as http:
            # API first: both create the store's tables at start, and two processes doing
            # that at once on a fresh SQLite file can crash one of them.
            await stack.start_api(http)
            stack.start_worker()
            phones = phone_numbers(RESTART_COUNT, seed=23)
            bodies = [
                {
                    "to": phones[i],
                    "ttl_s": TTL_S,
                    "channels": [
                        {"channel": "sms", "timeout_s": FALLBACK_S},
                        {"channel": "email", "to": f"restart{i}@example.com", "timeout_s": 120},
                    ],
                }
                for i in range(RESTART_COUNT)
            ]
            t0 = time.monotonic()
            created = await bounded_gather(
                10,
                [lambda b=b: create(http, b) for b in bodies],  # type: ignore[misc]
            )
            ids = [c["id"] for c in created]
            res.row("created", f"{len(ids)} in {time.monotonic() - t0:.1f} s")
            # Every sms went out before the outage.
            await bounded_gather(
                10,
                [lambda v=v: read_code(http, v, "sms", 15) for v in ids],  # type: ignore[misc]
            )

            await asyncio.sleep(max(0.0, t0 + STOP_AT_S - time.monotonic()))
            assert stack.server is not None
            t_stop = time.monotonic()
            stack.server.stop()
            res.row("server stopped (SIGTERM)", f"at {t_stop - t0:.1f} s, "
                    f"exit code {stack.server.popen.returncode}")  # fmt: skip
            await asyncio.sleep(OUTAGE_S)
            await stack.start_server()
            t_up = time.monotonic()
            outage = t_up - t_stop
            res.row("server back", f"at {t_up - t0:.1f} s (outage {outage:.1f} s)")

            # The worker and API are expected to reconnect without a restart.
            procs = [p for p in (stack.worker, stack.api) if p is not None]
            for p in procs:
                if p.popen.poll() is not None:
                    res.findings.append(f"{p.name} exited during the outage (code "
                                        f"{p.popen.returncode}); restarted it")  # fmt: skip
                    res.fail(f"{p.name} did not survive the dev server restart")
            assert stack.worker is not None and stack.api is not None
            if stack.worker.popen.poll() is not None:
                stack.start_worker()
            try:
                if stack.api.popen.poll() is not None:
                    raise SystemExit("api exited")
                await stack.api_ready(http, [stack.api], 30)
                res.row("API ready again", f"{time.monotonic() - t_up:.1f} s after server")
            except SystemExit as exc:
                res.fail(f"API not ready again by itself: {exc}")
                res.findings.append(f"API needed a restart after the server restart: {exc}")
                await stack.start_api(http)

            views = await wait_terminal(
                http, ids, limit_s=max(20.0, t0 + TTL_S + 30 - time.monotonic())
            )
            res.row("all terminal after", f"{time.monotonic() - t0:.1f} s")
            lost = [v for v in ids if views[v] is None]
            res.row("readable", f"{len(ids) - len(lost)} of {len(ids)}")
            if lost:
                res.fail(f"{len(lost)} verifications not readable, e.g. {lost[:3]}")

            fallback_s: list[float] = []
            ttl_s: list[float] = []
            statuses: Counter[str] = Counter()
            late_fallback = bad_ttl = no_fallback = 0
            fallback_hi = FALLBACK_S + outage + 5
            for vid in ids:
                view = views[vid]
                if view is None:
                    continue
                statuses[view["status"]] += 1
                by_channel = {d["channel"]: d for d in view["deliveries"] if d["kind"] == "step"}
                if "sms" in by_channel and "email" in by_channel:
                    gap = (
                        ts(by_channel["email"]["started_at"]) - ts(by_channel["sms"]["started_at"])
                    ).total_seconds()
                    fallback_s.append(gap)
                    if not FALLBACK_S - 1 <= gap <= fallback_hi:
                        late_fallback += 1
                        res.findings.append(f"{vid}: email fallback {gap:.1f} s after sms")
                else:
                    no_fallback += 1
                    res.findings.append(f"{vid}: deliveries {view['deliveries']}")
                if view.get("finished_at"):
                    life = (ts(view["finished_at"]) - ts(view["created_at"])).total_seconds()
                    ttl_s.append(life)
                    if not TTL_S - 1 <= life <= TTL_S + 5:
                        bad_ttl += 1
                        res.findings.append(f"{vid}: finished {life:.1f} s after creation")
            res.row("statuses", ", ".join(f"{k} {n}" for k, n in sorted(statuses.items())))
            if statuses["expired"] != len(ids):
                res.fail(f"{len(ids) - statuses['expired']} did not expire")

            def span(values: list[float]) -> str:
                if not values:
                    return "none"
                return f"min {min(values):.1f} s, max {max(values):.1f} s (n={len(values)})"

            res.row(f"sms->email fallback (want {FALLBACK_S}..{fallback_hi:.0f} s)",
                    span(fallback_s))  # fmt: skip
            res.row(f"created->expired (want {TTL_S - 1}..{TTL_S + 5} s)", span(ttl_s))
            if no_fallback:
                res.fail(f"{no_fallback} never fell back to email")
            if late_fallback:
                res.fail(f"{late_fallback} fell back outside the window")
            if bad_ttl:
                res.fail(f"{bad_ttl} expired outside the window")
            counts = sandbox_counts(stack.sandbox_db)
            dupes = sum(n - 1 for k, n in counts.items() if k[0] in views and n > 1)
            res.row("duplicate sandbox messages", dupes)
            if dupes:
                res.fail(f"{dupes} duplicate sandbox messages")
            for p in (stack.worker, stack.api):
                if p is not None and p.popen.poll() is not None:
                    res.fail(f"{p.name} exited; see {p.log}")
    except (Exception, SystemExit) as exc:
        res.fail(f"drill aborted: {type(exc).__name__}: {exc}")
    finally:
        stack.stop_all()
    res.row("wall time", f"{time.monotonic() - t_start:.1f} s")
    res.row("logs", str(stack.workdir))
    return res


# ------------------------------------------------------------------------- api-restart
API_RESTART_COUNT = 120
RETRYABLE_STATUS = {409, 429, 502, 503, 504}  # 409 here: the same key still in flight


async def api_restart() -> Result:
    """Creates and checks with Idempotency-Keys while the API is killed and restarted."""
    res = Result("api-restart")
    stack = Stack("api-restart")
    t_start = time.monotonic()
    seen: Counter[str] = Counter()
    ids: dict[str, set[str]] = {}
    try:
        await stack.prepare_store()
        await stack.start_server()
        async with stack.http() as http:
            await stack.start_api(http)
            stack.start_worker()
            phones = phone_numbers(API_RESTART_COUNT, seed=31)

            async def post(path: str, body: dict[str, Any], key: str) -> httpx.Response:
                """POST until the service answers for good, counting every retry's cause."""
                deadline = time.monotonic() + 90
                while True:
                    try:
                        r = await http.post(path, json=body, headers={"Idempotency-Key": key})
                    except httpx.TransportError as exc:
                        seen[f"connection: {type(exc).__name__}"] += 1
                    else:
                        if r.status_code not in RETRYABLE_STATUS:
                            return r
                        seen[f"http {r.status_code}"] += 1
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{path} never answered for good")
                    await asyncio.sleep(0.2)

            async def code_of(vid: str) -> str:
                for _ in range(120):
                    try:
                        return await read_code(http, vid, limit_s=5)
                    except (httpx.TransportError, httpx.HTTPStatusError, RuntimeError) as exc:
                        seen[f"inbox read: {type(exc).__name__}"] += 1
                        await asyncio.sleep(0.5)
                raise RuntimeError(f"no code for {vid}")

            async def one(i: int) -> str:
                key = f"drill-create-{i}"
                created = await post("/v1/verifications", {"to": phones[i]}, key)
                if created.status_code != 201:
                    seen[f"create answered {created.status_code}"] += 1
                    return "create-failed"
                vid = created.json()["id"]
                ids.setdefault(key, set()).add(vid)
                code = await code_of(vid)
                checked = await post(f"/v1/verifications/{vid}/check", {"code": code}, f"c-{i}")
                return str(checked.json().get("status", checked.status_code))

            async def restart() -> None:
                await asyncio.sleep(3)
                assert stack.api is not None
                stack.api.popen.kill()  # SIGKILL: no graceful shutdown
                res.row("API killed (SIGKILL)", f"at {time.monotonic() - t_start:.1f} s")
                await asyncio.sleep(2)
                await stack.start_api(http)
                res.row("API back", f"at {time.monotonic() - t_start:.1f} s")

            jobs: list[Callable[[], Awaitable[Any]]] = [
                functools.partial(one, i) for i in range(API_RESTART_COUNT)
            ]
            outcomes, _ = await asyncio.gather(bounded_gather(10, jobs), restart())
            statuses = Counter(outcomes)
            res.row("verifications", API_RESTART_COUNT)
            res.row("final statuses", dict(statuses))
            res.row("retried answers", dict(seen) or "none")
            if statuses.get("approved", 0) != API_RESTART_COUNT:
                res.fail(f"not every verification was approved: {dict(statuses)}")
            bad = {k: v for k, v in seen.items() if k.startswith("create answered")}
            if bad:
                res.fail(f"non-retryable answers: {bad}")
            duplicated = {k: v for k, v in ids.items() if len(v) > 1}
            if duplicated:
                res.fail(f"{len(duplicated)} keys created more than one verification")
            per_verification = sandbox_counts(stack.sandbox_db)
            twice = [k for k, n in per_verification.items() if n > 1]
            res.row("sandbox messages", sum(per_verification.values()))
            if twice:
                res.fail(f"{len(twice)} verifications got more than one sms")
    finally:
        stack.stop_all()
    res.row("wall time", f"{time.monotonic() - t_start:.1f} s")
    res.row("logs", str(stack.workdir))
    return res


# --------------------------------------------------------------------------------- main
DRILLS: dict[str, Callable[[], Awaitable[Result]]] = {
    "worker-kill": worker_kill,
    "server-restart": server_restart,
    "api-restart": api_restart,
}


def verdict(res: Result) -> str:
    if not res.passed:
        return "FAIL"
    return f"PASS ({len(res.findings)} findings)" if res.findings else "PASS"


def print_result(res: Result) -> None:
    width = max(len(name) for name, _ in res.rows) if res.rows else 10
    print(f"\n== {res.drill}: {verdict(res)}")
    for name, value in res.rows:
        print(f"  {name:<{width}}  {value}")
    for why in res.failures:
        print(f"  FAIL: {why}")
    for finding in res.findings[:20]:
        print(f"  finding: {finding}")


async def main(args: argparse.Namespace) -> int:
    names = [args.only] if args.only else list(DRILLS)
    results: list[Result] = []
    for name in names:
        print(f"drill {name} ...", file=sys.stderr)
        results.append(await DRILLS[name]())
    for res in results:
        print_result(res)
    print("\n| drill | result |\n| --- | --- |")
    for res in results:
        print(f"| {res.drill} | {verdict(res)} |")
    return 0 if all(r.passed for r in results) else 1


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--only", choices=sorted(DRILLS), help="run one drill")
    return p.parse_args()


if __name__ == "__main__":
    from otp.process import run_and_exit

    _args = parse_args()
    run_and_exit(lambda: asyncio.run(main(_args)))
