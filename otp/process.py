"""Process exit for command-line entry points.

The temporalio client's native runtime can crash the interpreter during
finalisation (an abort in PyGILState_Release or a segfault in a few percent of
short-lived processes, sdk-python issue 300). By the time that happens the
command's work is over and its outcome is known, so entry points flush their
output and leave with `os._exit(<real exit code>)`, skipping the finalisation
that crashes. A failure still exits non-zero: only the crash is avoided, never
an error hidden.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Callable
from typing import NoReturn


def exit_code_of(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def hard_exit(code: int) -> NoReturn:
    """Flush everything, then leave without interpreter finalisation."""
    try:
        logging.shutdown()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)


def run_and_exit(main: Callable[[], int | None]) -> NoReturn:
    """Run an entry point and exit with its code, whatever the native runtime does at exit."""
    try:
        code = main() or 0
    except SystemExit as exc:
        code = exit_code_of(exc)
    except KeyboardInterrupt:
        code = 130
    except BaseException:
        traceback.print_exc()
        code = 1
    hard_exit(code)
