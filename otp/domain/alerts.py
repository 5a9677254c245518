"""Types of the alert monitor: `MonitorWorkflow`'s input and its evaluation activity's.

The monitor is one long-running workflow per namespace (`MONITOR_WORKFLOW_ID`): every
`interval_s` it runs the evaluation activity, then the provider price fetch, and it
continues as new every `ticks_per_run` ticks so its history stays short.
"""

from __future__ import annotations

from otp.domain.base import PayloadModel

ACTIVITY_EVALUATE_ALERTS = "evaluate_alerts"
MONITOR_WORKFLOW_ID = "monitor"


class MonitorInput(PayloadModel):
    interval_s: int = 60
    ticks_per_run: int = 120
    # Ticks run by the runs before this one (carried across continue-as-new).
    ticks_done: int = 0


class MonitorResult(PayloadModel):
    ticks: int = 0
    triggered: int = 0
    resolved: int = 0


class EvaluateAlertsInput(PayloadModel):
    """Evaluate every application's rules in both modes (`application_id`: only that one)."""

    application_id: str | None = None


class EvaluateAlertsResult(PayloadModel):
    applications: int = 0
    triggered: int = 0
    resolved: int = 0
    notified: int = 0
