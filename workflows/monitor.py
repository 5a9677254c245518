"""MonitorWorkflow: the worker's clock for alerts and provider prices.

One long-running workflow per namespace. Each tick it runs the alert evaluation activity
(every application, both modes), then the provider price fetch; a failed fetch is logged
and the loop goes on (prices are fetched again next tick), and a failed evaluation is
retried by its own policy and, past it, waits for the next tick. Between ticks it waits
`interval_s` or for the `stop` signal. Every `ticks_per_run` ticks it continues as new,
carrying its counts, so the history never grows without bound.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from otp.domain import (
        ACTIVITY_EVALUATE_ALERTS,
        ACTIVITY_FETCH_PRICES,
        EvaluateAlertsInput,
        EvaluateAlertsResult,
        FetchPricesInput,
        FetchPricesResult,
        MonitorInput,
        MonitorResult,
    )

EVALUATE_TIMEOUT = timedelta(seconds=50)
FETCH_TIMEOUT = timedelta(seconds=50)
# Retries stay inside one tick: the next tick evaluates again anyway.
TICK_RETRY = RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=2))


@workflow.defn
class MonitorWorkflow:
    @workflow.init
    def __init__(self, input: MonitorInput) -> None:
        self._stop = False

    @workflow.signal
    def stop(self) -> None:
        """End the monitor after the tick in progress."""
        self._stop = True

    @workflow.run
    async def run(self, input: MonitorInput) -> MonitorResult:
        """Tick until stopped; continue as new every `ticks_per_run` ticks."""
        result = MonitorResult(ticks=input.ticks_done)
        for _ in range(max(1, input.ticks_per_run)):
            await self._tick(result)
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._stop, timeout=timedelta(seconds=input.interval_s)
                )
            if self._stop:
                return result
        workflow.continue_as_new(
            MonitorInput(
                interval_s=input.interval_s,
                ticks_per_run=input.ticks_per_run,
                ticks_done=result.ticks,
            )
        )

    async def _tick(self, result: MonitorResult) -> None:
        result.ticks += 1
        try:
            evaluated: EvaluateAlertsResult = await workflow.execute_activity(
                ACTIVITY_EVALUATE_ALERTS,
                EvaluateAlertsInput(),
                result_type=EvaluateAlertsResult,
                start_to_close_timeout=EVALUATE_TIMEOUT,
                retry_policy=TICK_RETRY,
            )
            result.triggered += evaluated.triggered
            result.resolved += evaluated.resolved
        except ActivityError:
            workflow.logger.warning("alert evaluation failed; next tick retries")
        try:
            await workflow.execute_activity(
                ACTIVITY_FETCH_PRICES,
                FetchPricesInput(),
                result_type=FetchPricesResult,
                start_to_close_timeout=FETCH_TIMEOUT,
                retry_policy=TICK_RETRY,
            )
        except ActivityError:
            workflow.logger.warning("price fetch failed; next tick retries")
