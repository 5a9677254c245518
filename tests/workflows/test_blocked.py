"""A risk gate refusing the send ends the verification `blocked`, without any fallback."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from otp.domain import Channel, DeliverInput, ErrorType, Status
from otp.observability import search_attributes as sa
from tests.helpers.workflows import FakeDeliver, fake_worker, make_input, plan, start


async def _refuse(input: DeliverInput, attempt: int) -> None:
    raise ApplicationError(
        "refused by a risk control",
        {"reason": "velocity limit: 5 sends per 10 min to this destination", "code": "velocity"},
        type=ErrorType.BLOCKED,
        non_retryable=True,
    )


async def test_a_refused_send_blocks_the_verification(
    ts_env: WorkflowEnvironment, workflow_id: str, task_queue: str
) -> None:
    deliver = FakeDeliver(_refuse)
    async with fake_worker(ts_env.client, task_queue, deliver):
        handle = await start(
            ts_env.client,
            workflow_id,
            task_queue,
            make_input(plan((Channel.SMS, 30), (Channel.EMAIL, 60))),
        )
        result = await handle.result()
        described = await handle.describe()
    assert result.status is Status.BLOCKED
    assert result.reason == "velocity limit: 5 sends per 10 min to this destination"
    assert [c.channel for c in deliver.calls] == [Channel.SMS]  # no fallback, no retry
    assert result.deliveries[0].error_type == ErrorType.BLOCKED
    attributes = described.typed_search_attributes
    assert attributes.get(sa.STATUS) == "blocked"
    assert attributes.get(sa.REASON) == "blocked:velocity"
