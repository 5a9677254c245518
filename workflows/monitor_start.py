"""Start the monitor workflow once per namespace (client side: the worker calls it at boot).

Not a workflow module. The id is fixed (`MONITOR_WORKFLOW_ID`) and the conflict policy
USE_EXISTING, so every worker that boots asks for it and one runs.
"""

from __future__ import annotations

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy

from otp.domain import MONITOR_WORKFLOW_ID, MonitorInput, MonitorResult
from workflows.monitor import MonitorWorkflow


async def start_monitor(
    client: Client,
    *,
    task_queue: str,
    interval_s: int = 60,
    workflow_id: str = MONITOR_WORKFLOW_ID,
) -> WorkflowHandle[MonitorWorkflow, MonitorResult]:
    """The running monitor, started if none runs."""
    return await client.start_workflow(
        MonitorWorkflow.run,
        MonitorInput(interval_s=interval_s),
        id=workflow_id,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary="alerts and provider prices",
    )
