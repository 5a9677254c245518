"""Live-mode delivery: named providers, unknown outcomes, rate limits, render failures."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from temporalio.exceptions import ApplicationError

from activities.verification import VerificationActivities
from otp.domain import Channel, DeliveryStatus, ErrorType, Mode
from otp.store import Store
from providers.base import (
    OutboundMessage,
    OutcomeUnknownError,
    RateLimitedError,
    SendReceipt,
)
from providers.sandbox import SandboxProvider
from tests.activities.conftest import activity_env, deliver_input
from tests.conftest import TEST_SECRETS


class Scripted:
    """A live provider answering from a script; optionally able to find a sent message."""

    channels = frozenset({Channel.SMS})

    def __init__(
        self, name: str, error: Exception | None = None, found: SendReceipt | None = None
    ) -> None:
        self.name = name
        self.error = error
        self.found = found
        self.sent: list[OutboundMessage] = []
        self.lookups: list[datetime] = []

    async def send(self, message: OutboundMessage) -> SendReceipt:
        self.sent.append(message)
        if self.error is not None:
            raise self.error
        return SendReceipt(self.name, f"{self.name}-1")


class Finder(Scripted):
    async def find_sent(self, message: OutboundMessage, *, since: datetime) -> SendReceipt | None:
        self.lookups.append(since)
        return self.found


def acts(store: Store, *providers: Scripted) -> VerificationActivities:
    by_name = {p.name: p for p in providers}
    return VerificationActivities(
        code_secret=TEST_SECRETS.code_secret,
        sandbox=SandboxProvider(store),
        live_providers={Channel.SMS: providers[0]} if providers else {},
        providers_by_name=by_name,
    )


async def test_the_named_provider_is_used_with_the_workflows_delivery_key(
    store: Store, workflow_id: str
) -> None:
    first, second = Scripted("first"), Scripted("second")
    key = f"{workflow_id}:run:3"
    result = await activity_env(workflow_id).run(
        acts(store, first, second).deliver,
        deliver_input(workflow_id, mode=Mode.LIVE, provider="second", delivery_key=key),
    )
    assert result.provider == "second" and not first.sent
    assert second.sent[0].idempotency_key == key


async def test_a_provider_that_cannot_serve_the_channel_fails_permanently(
    store: Store, workflow_id: str
) -> None:
    with pytest.raises(ApplicationError) as info:
        await activity_env(workflow_id).run(
            acts(store, Scripted("sms_only")).deliver,
            deliver_input(workflow_id, mode=Mode.LIVE, channel=Channel.VOICE, provider="sms_only"),
        )
    assert info.value.type == ErrorType.PERMANENT_DELIVERY and info.value.non_retryable


async def test_an_unknown_outcome_is_reconciled_through_the_provider(
    store: Store, workflow_id: str
) -> None:
    provider = Finder(
        "finder", error=OutcomeUnknownError(reference="k"), found=SendReceipt("finder", "SM9")
    )
    result = await activity_env(workflow_id).run(
        acts(store, provider).deliver, deliver_input(workflow_id, mode=Mode.LIVE)
    )
    assert (result.provider_message_id, result.status) == ("SM9", DeliveryStatus.SENT)
    assert len(provider.sent) == 1 and len(provider.lookups) == 1


async def test_an_unknown_outcome_that_cannot_be_reconciled_is_sent_but_unconfirmed(
    store: Store, workflow_id: str
) -> None:
    """Never sent twice: the delivery counts as sent without an id; its receipt or the
    step's timer decides."""
    provider = Finder("finder", error=OutcomeUnknownError(reference="k"), found=None)
    result = await activity_env(workflow_id).run(
        acts(store, provider).deliver, deliver_input(workflow_id, mode=Mode.LIVE)
    )
    assert (result.provider_message_id, result.status) == ("", DeliveryStatus.SENT)
    no_finder = Scripted("plain", error=OutcomeUnknownError(reference="k"))
    result = await activity_env(workflow_id).run(
        acts(store, no_finder).deliver, deliver_input(workflow_id, mode=Mode.LIVE)
    )
    assert result.provider == "plain" and result.provider_message_id == ""
    assert len(no_finder.sent) == 1


async def test_a_rate_limit_hint_becomes_the_next_retry_delay(
    store: Store, workflow_id: str
) -> None:
    provider = Scripted("limited", error=RateLimitedError(retry_after_s=7))
    with pytest.raises(ApplicationError) as info:
        await activity_env(workflow_id).run(
            acts(store, provider).deliver, deliver_input(workflow_id, mode=Mode.LIVE)
        )
    assert info.value.type == ErrorType.TRANSIENT_DELIVERY and not info.value.non_retryable
    assert info.value.next_retry_delay == timedelta(seconds=7)


async def test_a_message_that_cannot_be_rendered_is_not_retried(
    store: Store, workflow_id: str
) -> None:
    with pytest.raises(ApplicationError) as info:
        await activity_env(workflow_id).run(
            acts(store).deliver, deliver_input(workflow_id, app_hash="not a hash")
        )
    assert info.value.type == "RenderFailed" and info.value.non_retryable


async def test_webotp_line_and_app_hash_reach_the_message(store: Store, workflow_id: str) -> None:
    provider = Scripted("sms")
    await activity_env(workflow_id).run(
        acts(store, provider).deliver,
        deliver_input(
            workflow_id, mode=Mode.LIVE, web_domain="example.com", app_hash="FA+9qCX9VSu"
        ),
    )
    text = provider.sent[0].text
    code = provider.sent[0].code
    assert text.splitlines()[-1] == f"@example.com #{code}"
    assert "FA+9qCX9VSu" in text
