"""Webhook delivery on the time-skipping server, against a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import itertools
import json
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from activities.webhooks import WebhookActivities
from otp.domain import Mode, WebhookEvent, WebhookEventType, webhook_message_id
from otp.security.codec import data_converter
from otp.security.sealing import seal
from otp.settings import Settings
from otp.store import Store, WebhookEndpoint
from otp.store import webhooks as db
from otp.webhooks.models import (
    JITTER,
    MAX_ATTEMPTS,
    RETRY_SCHEDULE_S,
    SECRET_PURPOSE,
    MessageStatus,
    WebhookDeliveryResult,
    workflow_id,
)
from otp.webhooks.signing import generate_secret
from tests.conftest import TEST_SECRETS
from tests.helpers.webhook_receiver import Receiver, Reply, serve, spec_verify
from workflows.dispatch import start_webhook_deliveries
from workflows.webhooks import WebhookDeliveryWorkflow

APP = "app_hooks"
# Recorded by test_fails_twice_then_succeeds_on_the_backoff_schedule with
# RECORD_WEBHOOK_HISTORY=1: 500, 500, then 200 (two backoff timers).
HISTORY_FILE = (
    Path(__file__).resolve().parent.parent / "histories" / "webhook_delivery_retried.json"
)


def replayer() -> Replayer:
    return Replayer(
        workflows=[WebhookDeliveryWorkflow], data_converter=data_converter(TEST_SECRETS)
    )


async def test_committed_history_replays() -> None:
    """A change to the workflow that breaks running deliveries fails here."""
    history = WorkflowHistory.from_json("whk_replay", HISTORY_FILE.read_text())
    await replayer().replay_workflow(history)


@pytest.fixture
async def webhook_worker(
    ts_env: WorkflowEnvironment, settings: Settings, store: Store, task_queue: str
) -> AsyncIterator[Worker]:
    activities = WebhookActivities(store, TEST_SECRETS, settings)
    async with Worker(
        ts_env.client,
        task_queue=task_queue,
        workflows=[WebhookDeliveryWorkflow],
        activities=[activities.deliver_webhook],
    ) as worker:
        yield worker


async def make_endpoint(
    store: Store, url: str, *, mode: Mode = Mode.TEST, events: list[str] | None = None
) -> tuple[WebhookEndpoint, str]:
    secret = generate_secret()
    row = await db.create_endpoint(
        store,
        application_id=APP,
        mode=str(mode),
        url=url,
        secret_sealed=seal(TEST_SECRETS, secret, purpose=SECRET_PURPOSE),
        event_types=events or [],
    )
    return row, secret


def make_event(
    type_: WebhookEventType = WebhookEventType.APPROVED, mode: Mode = Mode.TEST
) -> WebhookEvent:
    verification_id = f"ver_{uuid.uuid4().hex}"
    return WebhookEvent(
        id=webhook_message_id(verification_id, "approved"),
        type=type_,
        application_id=APP,
        mode=mode,
        occurred_at=datetime.now(UTC),
        verification_id=verification_id,
        data={"status": "approved", "channel": "sms"},
    )


async def deliver(
    env: WorkflowEnvironment, store: Store, event: WebhookEvent, endpoint_id: str, tq: str
) -> tuple[WebhookDeliveryResult, WorkflowHandle[WebhookDeliveryWorkflow, WebhookDeliveryResult]]:
    assert await start_webhook_deliveries(env.client, store, event, task_queue=tq) == 1
    handle = env.client.get_workflow_handle_for(
        WebhookDeliveryWorkflow.run, workflow_id(event.id, endpoint_id)
    )
    return await result_of(env, handle), handle


async def result_of(
    env: WorkflowEnvironment, handle: WorkflowHandle[WebhookDeliveryWorkflow, WebhookDeliveryResult]
) -> WebhookDeliveryResult:
    """Await a result with time skipping unlocked, as the env does for handles it started.

    The dispatch helper starts the workflow, so the handle is a plain one: unlock here.
    """
    async with env.time_skipping_unlocked():  # type: ignore[attr-defined]
        return await handle.result()


async def timers_s(
    handle: WorkflowHandle[WebhookDeliveryWorkflow, WebhookDeliveryResult],
) -> list[float]:
    """Every timer the workflow started, in seconds (workflow time)."""
    history = await handle.fetch_history()
    return [
        e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta().total_seconds()
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED
    ]


async def attempt_gaps_s(
    handle: WorkflowHandle[WebhookDeliveryWorkflow, WebhookDeliveryResult],
) -> list[float]:
    """Workflow time between consecutive attempts (activity scheduled events)."""
    history = await handle.fetch_history()
    times = [
        e.event_time.ToDatetime()
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    return [(b - a).total_seconds() for a, b in itertools.pairwise(times)]


def within_jitter(actual: float, base: float) -> bool:
    return base * (1 - JITTER) - 0.5 <= actual <= base * (1 + JITTER) + 0.5


async def test_fails_twice_then_succeeds_on_the_backoff_schedule(
    ts_env: WorkflowEnvironment, webhook_worker: Worker, store: Store, task_queue: str
) -> None:
    receiver = Receiver([Reply(500), Reply(500), Reply(200)])
    async with serve(receiver):
        endpoint, secret = await make_endpoint(store, receiver.url)
        event = make_event()
        result, handle = await deliver(ts_env, store, event, endpoint.id, task_queue)

    assert result.status is MessageStatus.SUCCEEDED
    assert (result.attempts, result.last_status_code) == (3, 200)
    requests = receiver.requests
    assert len(requests) == 3
    # Same id and bytes every time, a signature valid for that attempt's timestamp.
    assert {r.headers["webhook-id"] for r in requests} == {event.id}
    assert len({r.body for r in requests}) == 1
    for r in requests:
        assert abs(int(r.headers["webhook-timestamp"]) - r.at) < 5
        assert spec_verify(secret, r.headers, r.body)
        assert r.headers["content-type"] == "application/json"
    body = json.loads(requests[0].body)
    assert body["type"] == "verification.approved"
    assert body["data"]["id"] == event.verification_id
    assert body["data"]["mode"] == "test" and body["data"]["application_id"] == APP

    timers = await timers_s(handle)
    assert len(timers) == 2
    assert within_jitter(timers[0], RETRY_SCHEDULE_S[0]), timers
    assert within_jitter(timers[1], RETRY_SCHEDULE_S[1]), timers
    gaps = await attempt_gaps_s(handle)
    assert all(abs(g - t) < 2 for g, t in zip(gaps, timers, strict=True)), (gaps, timers)

    # The fresh history replays with the current code.
    history = await handle.fetch_history()
    await replayer().replay_workflow(history)
    if os.environ.get("RECORD_WEBHOOK_HISTORY"):
        HISTORY_FILE.write_text(history.to_json())

    message = await db.get_message(
        store, message_id=event.id, endpoint_id=endpoint.id, application_id=APP, mode="test"
    )
    assert message is not None
    assert (message.status, message.attempts, message.last_status_code) == ("succeeded", 3, 200)
    assert message.next_attempt_at is None
    attempts = await db.list_attempts(store, message_id=event.id, endpoint_id=endpoint.id)
    assert [(a.attempt, a.status_code) for a in attempts] == [(1, 500), (2, 500), (3, 200)]
    assert attempts[0].error == "HTTP 500" and attempts[2].error is None


async def test_gives_up_after_the_whole_schedule(
    ts_env: WorkflowEnvironment, webhook_worker: Worker, store: Store, task_queue: str
) -> None:
    receiver = Receiver([Reply(503)])
    async with serve(receiver):
        endpoint, _ = await make_endpoint(store, receiver.url)
        event = make_event()
        result, handle = await deliver(ts_env, store, event, endpoint.id, task_queue)

    assert result.status is MessageStatus.FAILED
    assert result.attempts == MAX_ATTEMPTS == len(receiver.requests)
    timers = await timers_s(handle)
    assert len(timers) == MAX_ATTEMPTS - 1
    for actual, base in zip(timers, RETRY_SCHEDULE_S, strict=True):
        assert actual <= base * (1 + JITTER) + 0.5
    # The last delays may be cut by the 3-day budget; the earlier ones follow the schedule.
    for actual, base in zip(timers[:-1], RETRY_SCHEDULE_S[:-1], strict=True):
        assert within_jitter(actual, base), timers
    assert sum(timers) <= timedelta(days=3).total_seconds()
    assert sum(timers) > 2.5 * 86400
    message = await db.get_message(
        store, message_id=event.id, endpoint_id=endpoint.id, application_id=APP, mode="test"
    )
    assert message is not None and message.status == "failed"
    assert message.attempts == MAX_ATTEMPTS and message.next_attempt_at is None


async def test_gone_disables_the_endpoint_and_stops(
    ts_env: WorkflowEnvironment, webhook_worker: Worker, store: Store, task_queue: str
) -> None:
    receiver = Receiver([Reply(410)])
    async with serve(receiver):
        endpoint, _ = await make_endpoint(store, receiver.url)
        event = make_event()
        result, handle = await deliver(ts_env, store, event, endpoint.id, task_queue)
        # Later events are not even dispatched to the disabled endpoint.
        assert (
            await start_webhook_deliveries(
                ts_env.client, store, make_event(), task_queue=task_queue
            )
            == 0
        )

    assert result.status is MessageStatus.DISABLED
    assert (result.attempts, result.last_status_code) == (1, 410)
    assert len(receiver.requests) == 1
    assert await timers_s(handle) == []
    row = await db.get_endpoint(store, endpoint_id=endpoint.id, application_id=APP, mode="test")
    assert row is not None and not row.enabled and row.disabled_reason
    message = await db.get_message(
        store, message_id=event.id, endpoint_id=endpoint.id, application_id=APP, mode="test"
    )
    assert message is not None and message.status == "disabled"


async def test_retry_after_is_honoured(
    ts_env: WorkflowEnvironment, webhook_worker: Worker, store: Store, task_queue: str
) -> None:
    receiver = Receiver([Reply(429, {"Retry-After": "3600"}), Reply(204)])
    async with serve(receiver):
        endpoint, _ = await make_endpoint(store, receiver.url)
        result, handle = await deliver(ts_env, store, make_event(), endpoint.id, task_queue)

    assert result.status is MessageStatus.SUCCEEDED and result.attempts == 2
    assert await timers_s(handle) == [3600.0]


async def test_endpoint_disabled_meanwhile_stops_delivery(
    ts_env: WorkflowEnvironment, webhook_worker: Worker, store: Store, task_queue: str
) -> None:
    holder: dict[str, str] = {}

    async def disable(_: object) -> None:
        await db.update_endpoint(
            store, endpoint_id=holder["id"], application_id=APP, mode="test", enabled=False
        )

    receiver = Receiver([Reply(500), Reply(200)], on_request=disable)
    async with serve(receiver):
        endpoint, _ = await make_endpoint(store, receiver.url)
        holder["id"] = endpoint.id
        event = make_event()
        result, _handle = await deliver(ts_env, store, event, endpoint.id, task_queue)

    assert result.status is MessageStatus.DISABLED
    assert len(receiver.requests) == 1
    message = await db.get_message(
        store, message_id=event.id, endpoint_id=endpoint.id, application_id=APP, mode="test"
    )
    assert message is not None and message.status == "disabled" and message.attempts == 1


async def test_dispatch_is_idempotent_and_respects_subscriptions_and_mode(
    ts_env: WorkflowEnvironment, webhook_worker: Worker, store: Store, task_queue: str
) -> None:
    receiver = Receiver([Reply(200)])
    async with serve(receiver):
        every, _ = await make_endpoint(store, receiver.url)
        await make_endpoint(store, receiver.url, events=["verification.expired"])
        await make_endpoint(store, "https://example.com/live", mode=Mode.LIVE)
        event = make_event()
        client = ts_env.client
        assert await start_webhook_deliveries(client, store, event, task_queue=task_queue) == 1
        handle = client.get_workflow_handle_for(
            WebhookDeliveryWorkflow.run, workflow_id(event.id, every.id)
        )
        assert (await result_of(ts_env, handle)).status is MessageStatus.SUCCEEDED
        # The same event again (after it finished, and while it runs) starts nothing.
        assert await start_webhook_deliveries(client, store, event, task_queue=task_queue) == 0
    assert len(receiver.requests) == 1
    assert len(await db.list_messages(store, application_id=APP, mode="test")) == 1


async def test_live_endpoint_on_a_private_address_is_never_contacted(
    ts_env: WorkflowEnvironment, settings: Settings, store: Store, task_queue: str
) -> None:
    """The store holds a live endpoint resolving to loopback (as after a DNS change)."""

    async def rebinding(host: str, port: int) -> list[str]:
        from otp.webhooks.models import resolve_public

        return await resolve_public("127.0.0.1", port)

    activities = WebhookActivities(store, TEST_SECRETS, settings, resolver=rebinding)
    receiver = Receiver([Reply(200)])
    async with (
        serve(receiver),
        Worker(
            ts_env.client,
            task_queue=task_queue,
            workflows=[WebhookDeliveryWorkflow],
            activities=[activities.deliver_webhook],
        ),
    ):
        endpoint, _ = await make_endpoint(
            store, f"https://hooks.example.com:{receiver.port}/x", mode=Mode.LIVE
        )
        event = make_event(mode=Mode.LIVE)
        result, _handle = await deliver(ts_env, store, event, endpoint.id, task_queue)

    assert result.status is MessageStatus.FAILED
    assert receiver.requests == []
    attempts = await db.list_attempts(store, message_id=event.id, endpoint_id=endpoint.id)
    assert len(attempts) == MAX_ATTEMPTS
    assert all(a.status_code is None and (a.error or "").startswith("refused") for a in attempts)
