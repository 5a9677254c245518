"""A workflow reporting which of VerificationWorkflow's helper modules its sandbox shares
with the host (test_sandbox_safety.py runs it)."""

from __future__ import annotations

import sys

from temporalio import workflow

# Not passed through: the sandbox loads its own copy, as it does for the real workflow.
import workflows.verification  # noqa: F401


@workflow.defn(sandboxed=True)
class SharedHelpersProbe:
    @workflow.run
    async def run(self, host_ids: dict[str, int]) -> list[str]:
        """The modules (of `host_ids`: name -> id on the host) the sandbox shares."""
        modules = sys.modules
        ours = modules.get("workflows.verification")
        shared = [name for name, host in host_ids.items() if id(modules.get(name)) == host]
        if id(ours) == host_ids.get("workflows.verification"):
            shared.append("(the workflow module itself: not reloaded)")
        return sorted(shared)
