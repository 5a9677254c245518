"""The worker's scenario lookup: cached per application, test mode only."""

from __future__ import annotations

import asyncio

from activities.sandbox_scenarios import ScenarioLookup
from otp.domain import Channel, DeliveryStatus, Mode
from otp.sandbox.scenarios import ScenarioKind
from otp.store import Store
from otp.store import sandbox_scenarios as db
from otp.store.applications import ensure_default_application
from otp.webhooks.models import DeliverWebhookInput, DeliveryOutcome
from providers.sandbox import SandboxProvider
from tests.activities.conftest import deliver_input
from tests.conftest import TEST_SECRETS
from tests.providers.test_sandbox_scenarios import Inbox, outbound


async def test_matches_in_test_mode_and_caches_for_its_ttl(store: Store) -> None:
    await ensure_default_application(store)
    lookup = ScenarioLookup(store, TEST_SECRETS.code_secret, ttl_s=0.3)
    inbox = Inbox()
    sandbox = SandboxProvider(inbox)
    test = deliver_input("ver_x", application_id="default", to="+447400123123", mode=Mode.TEST)
    assert await lookup.sandbox_for(test, sandbox) is sandbox  # none yet (cached: none)

    await db.create_scenario(
        store, application_id="default", kind=ScenarioKind.NO_RECEIPT, country="GB"
    )
    assert await lookup.sandbox_for(test, sandbox) is sandbox  # still cached
    await asyncio.sleep(0.35)
    simulated = await lookup.sandbox_for(test, sandbox)
    assert simulated is not sandbox
    sent = await simulated.send(outbound(test.to))
    assert sent.status is DeliveryStatus.SENT and inbox.messages == []  # never delivered
    live = test.model_copy(update={"mode": Mode.LIVE})
    assert await lookup.sandbox_for(live, sandbox) is sandbox
    email = test.model_copy(update={"channel": Channel.EMAIL, "to": "qa@example.com"})
    assert await lookup.sandbox_for(email, sandbox) is sandbox


async def test_webhook_failure_only_for_test_mode(store: Store) -> None:
    await ensure_default_application(store)
    await db.create_scenario(
        store, application_id="default", kind=ScenarioKind.WEBHOOK_FAILURE, status_code=500
    )
    lookup = ScenarioLookup(store, TEST_SECRETS.code_secret)
    fields = {
        "message_id": "msg_1",
        "endpoint_id": "we_1",
        "application_id": "default",
        "attempt": 1,
        "body": "{}",
    }
    result = await lookup.webhook_result(DeliverWebhookInput(mode=Mode.TEST, **fields))
    assert result is not None
    assert (result.outcome, result.status_code) == (DeliveryOutcome.RETRY, 500)
    assert await lookup.webhook_result(DeliverWebhookInput(mode=Mode.LIVE, **fields)) is None
