"""A workflow naming the modules its sandbox holds private copies of (test_sandbox_safety.py
runs it to see that VerificationWorkflow's helpers are shared with the host)."""

from __future__ import annotations

import sys

from temporalio import workflow

# Not passed through: the sandbox loads its own copy, as it does for the real workflow.
import workflows.verification  # noqa: F401


@workflow.defn(sandboxed=True)
class SharedHelpersProbe:
    @workflow.run
    async def run(self, host_ids: dict[str, int]) -> list[str]:
        """Which of `host_ids` (module name -> id of the host's module) the sandbox loaded
        again for itself."""
        modules = sys.modules
        return sorted(
            name for name, host in host_ids.items() if name in modules and id(modules[name]) != host
        )
