"""Exit with pytest's own status, whatever temporalio's native runtime does at shutdown.

The temporalio client's native runtime can crash the interpreter while it
finalises (sdk-python issue 300): an abort or a segfault *after* the last test
and the summary, which would turn a green run into a red exit code. This plugin
remembers the session, and in the very last `pytest_unconfigure` (trylast: after
the terminal summary, junit XML, cache and every other report are written) it
flushes and leaves with `os._exit(session.exitstatus)` via `otp.process.hard_exit`.
Failures, errors, interruptions and exit 5 (no tests collected) propagate unchanged:
only the crash at interpreter exit is skipped.

Set `OTP_NO_EXIT_GUARD=1` to turn it off, e.g. to debug the shutdown itself.
"""

from __future__ import annotations

import os

import pytest

from otp.process import hard_exit

DISABLE_ENV = "OTP_NO_EXIT_GUARD"

_session_key = pytest.StashKey[pytest.Session]()
_primary: pytest.Config | None = None


def guard_enabled() -> bool:
    return os.environ.get(DISABLE_ENV, "").strip().lower() in ("", "0", "false", "no")


def pytest_configure(config: pytest.Config) -> None:
    # Only the outermost pytest run in this process exits: an in-process nested
    # run (pytester's runpytest) must return to its caller.
    global _primary
    if _primary is None and not hasattr(config, "workerinput"):
        _primary = config


def pytest_sessionfinish(session: pytest.Session) -> None:
    session.config.stash[_session_key] = session


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    global _primary
    if config is not _primary:
        return
    _primary = None
    session = config.stash.get(_session_key, None)
    if session is None or not guard_enabled():
        return
    status = int(session.exitstatus)
    if config.pluginmanager.get_plugin("terminalreporter") is not None:
        config.get_terminal_writer().flush()
    hard_exit(status)
