"""Record the committed replay history: `.venv/bin/python -m tests.histories.record`.

Runs a representative verification on the time-skipping server with the production
activities and TEST_SECRETS (sms, fallback to email after 30 s, a wrong check, a right
check) and writes its history as JSON next to this file. Re-record only on purpose: the
point of the committed file is to catch workflow changes that break running executions.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from otp.domain import Channel, DeliveryStatus, Status
from otp.observability import search_attributes as sa
from otp.security.codec import data_converter
from otp.settings import Settings
from otp.store import Store
from tests.conftest import TEST_SECRETS, real_worker
from tests.helpers.workflows import (
    check_input,
    inbox_codes,
    make_input,
    plan,
    start,
    wait_state,
    wrong_code,
)
from workflows.verification import VerificationWorkflow

HERE = Path(__file__).resolve().parent
WORKFLOW_ID = "ver_recorded_fallback_approved"
HISTORY_FILE = HERE / "verification_fallback_approved.json"


async def record(out: Path) -> None:
    binary = Path(sys.executable).parent / "temporal-test-server"
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(TEST_SECRETS),
        test_server_existing_path=str(binary),
    )
    try:
        await sa.register(env.client)
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(data_dir=Path(tmp), task_queue="record-replay", env="dev")
            store = Store(f"sqlite+aiosqlite:///{Path(tmp) / 'otp.db'}")
            await store.create_all()
            try:
                async with real_worker(env.client, settings, store):
                    handle = await start(
                        env.client,
                        WORKFLOW_ID,
                        settings.task_queue,
                        make_input(plan((Channel.SMS, 30), (Channel.EMAIL, 60)), ttl_s=600),
                    )
                    (code,) = await inbox_codes(store, WORKFLOW_ID)
                    await env.sleep(31)  # the sms step times out: fallback to email
                    await wait_state(
                        handle,
                        lambda s: (
                            len(s.deliveries) == 2
                            and s.deliveries[1].status is not DeliveryStatus.SENDING
                        ),
                        "email fallback",
                    )
                    await handle.execute_update(
                        VerificationWorkflow.check, check_input(WORKFLOW_ID, wrong_code(code))
                    )
                    await handle.execute_update(
                        VerificationWorkflow.check, check_input(WORKFLOW_ID, code)
                    )
                    result = await handle.result()
                    assert result.status is Status.APPROVED
                    history = await handle.fetch_history()
            finally:
                await store.close()
    finally:
        await env.shutdown()
    out.write_text(history.to_json() + "\n")


if __name__ == "__main__":
    asyncio.run(record(HISTORY_FILE))
