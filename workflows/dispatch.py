"""Start webhook deliveries for an event (client side: the API and activities call this).

Not a workflow module: it talks to the store and to Temporal, and workflow code never
imports it. One `WebhookDeliveryWorkflow` per (event, endpoint), with the id
`whk_<message id>_<endpoint id>` and REJECT_DUPLICATE, so dispatching the same event
again starts nothing new.
"""

from __future__ import annotations

import logging

from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from otp.domain import WebhookEvent
from otp.store import Store, WebhookEndpoint
from otp.store import webhooks as db
from otp.webhooks.models import WebhookDeliveryInput, workflow_id
from otp.webhooks.signing import event_body
from workflows.webhooks import WebhookDeliveryWorkflow

logger = logging.getLogger("otp.webhooks")


async def start_webhook_deliveries(
    client: Client, store: Store, event: WebhookEvent, *, task_queue: str
) -> int:
    """Start one delivery per enabled endpoint of the event's application and mode that
    subscribes to its type; return how many were started (0 when already dispatched)."""
    endpoints = await db.list_subscribed_endpoints(
        store,
        application_id=event.application_id,
        mode=str(event.mode),
        event_type=str(event.type),
    )
    started = 0
    for endpoint in endpoints:
        if await start_webhook_delivery(client, store, event, endpoint, task_queue=task_queue):
            started += 1
    return started


async def start_webhook_delivery(
    client: Client,
    store: Store,
    event: WebhookEvent,
    endpoint: WebhookEndpoint,
    *,
    task_queue: str,
) -> bool:
    """Record the message for one endpoint and start its delivery; False if already started."""
    if endpoint.application_id != event.application_id or endpoint.mode != str(event.mode):
        raise ValueError("an event is only delivered to endpoints of its application and mode")
    message, _created = await db.insert_message(
        store,
        message_id=event.id,
        endpoint_id=endpoint.id,
        application_id=event.application_id,
        mode=str(event.mode),
        event_type=str(event.type),
        verification_id=event.verification_id,
    )
    if message.status != db.PENDING:
        return False  # finished long ago (its workflow may be past retention)
    try:
        await client.start_workflow(
            WebhookDeliveryWorkflow.run,
            WebhookDeliveryInput(
                message_id=event.id,
                endpoint_id=endpoint.id,
                application_id=event.application_id,
                mode=event.mode,
                event_type=str(event.type),
                verification_id=event.verification_id,
                body=event_body(event),
            ),
            id=workflow_id(event.id, endpoint.id),
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"{event.type} to endpoint {endpoint.id}",
        )
    except WorkflowAlreadyStartedError:
        return False
    logger.info(
        "webhook delivery started",
        extra={
            "message_id": event.id,
            "endpoint_id": endpoint.id,
            "verification_id": event.verification_id,
            "event_type": str(event.type),
        },
    )
    return True
