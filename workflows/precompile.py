"""Bytecode for the workflow modules, written once when a worker starts.

The workflow sandbox imports the workflow module afresh for every new workflow instance.
Without a bytecode cache (PYTHONDONTWRITEBYTECODE, a fresh checkout) each of those
imports compiles the source again: measured at about an eighth of the worker's CPU under
load. Reading a cache is allowed even when writing is turned off, so compile once here.
"""

from __future__ import annotations

import compileall
from pathlib import Path


def precompile_workflows() -> bool:
    """Write bytecode for the workflow modules if it is missing.

    Returns False where the folder is read-only (nothing breaks).
    """
    folder = Path(__file__).parent
    try:
        return bool(compileall.compile_dir(folder, quiet=2, workers=1))
    except OSError:
        return False
