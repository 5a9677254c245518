"""A conversion drop, end to end: the worker's monitor workflow on the Java time-skipping
server with the production activities (alert evaluation, provider prices, webhook
delivery) raises exactly one alert, then exactly one resolve once conversion recovers,
each delivered as a Standard Webhooks-signed event to a real HTTP receiver and by email
to aiosmtpd; later ticks add nothing.
"""

from __future__ import annotations

import asyncio
import json
import secrets as pysecrets
import time
from datetime import UTC, datetime, timedelta

import standardwebhooks
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment

from activities.wiring import build_activities, build_worker
from otp.alerts.rules import AlertRules
from otp.domain import MonitorInput, WebhookEventType
from otp.security.sealing import seal
from otp.settings import Settings
from otp.store import Store
from otp.store import alerts as store_alerts
from otp.store import webhooks as store_webhooks
from otp.store.applications import create_application
from otp.store.tables import AlertRecord, VerificationRecord
from otp.webhooks.models import SECRET_PURPOSE
from otp.webhooks.signing import generate_secret
from tests.conftest import TEST_SECRETS
from tests.helpers.provider_fakes import SmtpServer
from tests.helpers.webhook_receiver import Receiver, Reply, serve
from workflows.monitor import MonitorWorkflow

OPS = "ops@acme.test"


async def seed(store: Store, app_id: str, *, approved: int, expired: int, minutes_ago: int) -> None:
    """Test-mode verifications created `minutes_ago` (past the grace), US, SMS first."""
    created = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    async with store.session() as session:
        for n in range(approved + expired):
            status = "approved" if n < approved else "expired"
            session.add(
                VerificationRecord(
                    id=f"ver_{pysecrets.token_hex(12)}",
                    application_id=app_id,
                    mode="test",
                    status=status,
                    first_channel="sms",
                    channel="sms",
                    country="US",
                    created_at=created,
                    expires_at=created + timedelta(minutes=10),
                    finished_at=created + timedelta(minutes=1),
                    final=True,
                )
            )
        await session.commit()


async def until(predicate: object, what: str, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not await predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not within {within}s: {what}"
        await asyncio.sleep(0.05)


async def test_a_conversion_drop_raises_one_alert_and_one_resolve_by_webhook_and_email(
    ts_env: WorkflowEnvironment, store: Store, settings: Settings
) -> None:
    smtp = SmtpServer()
    smtp.start()
    try:
        await _scenario(ts_env, store, settings, smtp)
    finally:
        smtp.stop()


async def _scenario(
    env: WorkflowEnvironment, store: Store, settings: Settings, smtp: SmtpServer
) -> None:
    def emails(count: int) -> object:
        async def arrived() -> bool:
            return len(smtp.sink.received) >= count

        return arrived

    settings = settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "smtp_timeout_s": 5.0,
            "alerts_email_from": "OTP alerts <alerts@acme.test>",
        }
    )
    app = await create_application(store, name="Acme")
    await store_alerts.put_rules(store, application_id=app.id, rules=AlertRules(email_to=[OPS]))
    # Test mode: the receiver is plain http on loopback, which live endpoints may not use.
    # 18 of 40 approved: 45 %, under the overall 50 % but over the country's 30 % and the
    # channel's 40 %: the one condition is the overall drop.
    await seed(store, app.id, approved=18, expired=22, minutes_ago=30)

    async with serve(Receiver([Reply(200)])) as receiver:
        secret = generate_secret()
        await store_webhooks.create_endpoint(
            store,
            application_id=app.id,
            mode="test",
            url=receiver.url,
            secret_sealed=seal(TEST_SECRETS, secret, purpose=SECRET_PURPOSE),
            event_types=[
                WebhookEventType.ALERT_TRIGGERED.value,
                WebhookEventType.ALERT_RESOLVED.value,
            ],
        )
        activities = build_activities(settings, TEST_SECRETS, store, client=env.client)
        async with build_worker(env.client, settings, activities):
            handle = await env.client.start_workflow(
                MonitorWorkflow.run,
                MonitorInput(interval_s=60),
                id=f"monitor-{pysecrets.token_hex(4)}",
                task_queue=settings.task_queue,
            )

            async def firing() -> bool:
                return bool(
                    await store_alerts.open_alerts(store, application_id=app.id, mode="test")
                )

            await until(firing, "the alert")
            (triggered,) = await receiver.wait_for(1)
            await until(emails(1), "the alert email")

            # Conversion recovers: 30 more approved, 48 of 70 (69 %). The next tick resolves.
            await seed(store, app.id, approved=30, expired=0, minutes_ago=20)
            await env.sleep(61)

            async def resolved() -> bool:
                return not await firing()

            await until(resolved, "the resolve")
            received = await receiver.wait_for(2)
            await until(emails(2), "the resolve email")

            # Two more ticks: nothing new is raised, resolved or sent.
            await env.sleep(121)
            await asyncio.sleep(1.0)
            await handle.signal(MonitorWorkflow.stop)
            result = await handle.result()
    assert result.ticks >= 4 and (result.triggered, result.resolved) == (1, 1)

    assert len(receiver.requests) == 2
    verifier = standardwebhooks.Webhook(secret)
    bodies = [verifier.verify(r.body, dict(r.headers)) for r in received]
    assert [b["type"] for b in bodies] == ["alert.triggered", "alert.resolved"]
    raised, cleared = (b["data"] for b in bodies)
    assert raised["rule"] == "conversion" and raised["alert_id"] == cleared["alert_id"]
    assert raised["evidence"]["started"] == 40 and raised["evidence"]["approved"] == 18
    assert raised["evidence"]["threshold"] == 0.5 and raised["evidence"]["window_s"] == 3600
    assert cleared["state"] == "resolved" and cleared["resolved_evidence"]["approved"] == 48
    assert triggered.headers["webhook-id"] != received[1].headers["webhook-id"]

    assert len(smtp.sink.received) == 2
    (_, to_first, first), (_, _, second) = smtp.sink.received
    assert to_first == [OPS]
    assert first["To"] == OPS and first["Subject"].startswith("[ALERT] Acme (test): conversion")
    assert second["Subject"].startswith("[RESOLVED] Acme (test): conversion")
    assert (
        "18" in first.get_content() and json.dumps(raised["alert_id"])[1:-1] in first.get_content()
    )

    async with store.session() as session:
        rows = (
            await session.exec(select(AlertRecord).where(AlertRecord.application_id == app.id))
        ).all()
    assert [(r.rule, r.state) for r in rows] == [("conversion", "resolved")]
