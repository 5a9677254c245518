"""ProviderCheckWorkflow: one test send through an application's provider account.

The API cannot reach the providers; the worker can. The workflow runs one activity, once
(a test send is not retried: its answer is the point), and returns what it reported.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from otp.domain.provider_check import (
        ACTIVITY_CHECK_PROVIDER,
        ProviderCheckInput,
        ProviderCheckResult,
    )

SEND_TIMEOUT = timedelta(seconds=30)


@workflow.defn
class ProviderCheckWorkflow:
    @workflow.run
    async def run(self, input: ProviderCheckInput) -> ProviderCheckResult:
        """Send one test message through the account; its result, success or error."""
        result: ProviderCheckResult = await workflow.execute_activity(
            ACTIVITY_CHECK_PROVIDER,
            input,
            result_type=ProviderCheckResult,
            start_to_close_timeout=SEND_TIMEOUT,
            retry_policy=RetryPolicy(maximum_attempts=1),
        )
        return result
