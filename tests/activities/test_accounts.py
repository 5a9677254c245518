"""The worker's provider account adapters: built per account version, closed when dropped."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest
from pydantic import SecretStr

from activities import accounts as accounts_module
from activities.accounts import AccountProviders
from activities.verification import VerificationActivities
from otp.applications.provider_accounts import parse_fields
from otp.domain import Channel, Mode
from otp.settings import Settings
from otp.store import Store
from otp.store import provider_accounts as db
from otp.store.applications import ensure_default_application
from providers.base import OutboundMessage, PermanentDeliveryError, Provider, SendReceipt
from providers.sandbox import SandboxProvider
from providers.twilio import TwilioProvider
from tests.conftest import TEST_SECRETS

SETTINGS = Settings(public_url="https://otp.example.com")
OWN = {"account_sid": "AC" + "2" * 32, "auth_token": "own-token-0123456789", "sms_from": "+1500"}


async def _put(store: Store, raw: Mapping[str, object]) -> None:
    fields = parse_fields("twilio", raw, SETTINGS)
    await db.put_account(
        store,
        application_id="default",
        provider="twilio",
        settings=fields.settings,
        secrets_sealed=fields.sealed(TEST_SECRETS, application_id="default", provider="twilio"),
        secret_hints=fields.hints(),
    )


async def test_adapters_follow_the_account_version_and_close_when_dropped(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    await ensure_default_application(store)
    monkeypatch.setattr(accounts_module, "CLOSE_GRACE_S", 0.0)
    providers = AccountProviders(store, SETTINGS, TEST_SECRETS)
    try:
        assert await providers.for_application("default") == {}
        await _put(store, OWN)
        providers._accounts.clear()  # past the lookup TTL
        first = (await providers.for_application("default"))["twilio"]
        assert isinstance(first, TwilioProvider)
        assert first._config.auth_token == OWN["auth_token"]
        row = await db.get_account(store, application_id="default", provider="twilio")
        assert row is not None
        assert first._config.status_callback_url == (
            f"https://otp.example.com/v1/webhooks/twilio/status?account={row.id}"
        )
        # Cached: the same adapter until the account changes.
        assert (await providers.for_application("default"))["twilio"] is first

        await _put(store, {**OWN, "auth_token": "rotated-token-0123456789"})
        providers._accounts.clear()
        second = (await providers.for_application("default"))["twilio"]
        assert second is not first
        assert isinstance(second, TwilioProvider)
        assert second._config.auth_token == "rotated-token-0123456789"

        closed: list[object] = []

        async def record_close() -> None:
            closed.append(first)

        monkeypatch.setattr(first, "aclose", record_close)
        providers._adapters.expire(float("inf"))  # every adapter past its TTL
        await asyncio.sleep(0.05)
        assert first in closed
    finally:
        await providers.aclose()


async def test_an_account_that_cannot_be_unsealed_falls_back_to_the_global_one(
    store: Store,
) -> None:
    await ensure_default_application(store)
    await db.put_account(
        store,
        application_id="default",
        provider="twilio",
        settings={"account_sid": OWN["account_sid"], "sms_from": "+1500"},
        secrets_sealed="v2.unknown.AAAA",
        secret_hints={},
    )
    settings = SETTINGS.model_copy(update={"twilio_auth_token": SecretStr("g")})
    providers = AccountProviders(store, settings, TEST_SECRETS)
    try:
        assert await providers.for_application("default") == {}
    finally:
        await providers.aclose()


class _Named:
    """A provider known by name and channels (provider_for never sends)."""

    def __init__(self, name: str, channels: frozenset[Channel]) -> None:
        self.name = name
        self.channels = channels

    async def send(self, message: OutboundMessage) -> SendReceipt:
        return SendReceipt(self.name, f"{self.name}-1")


def test_an_applications_own_account_replaces_the_global_one_of_that_provider(
    store: Store,
) -> None:
    global_twilio = _Named("twilio", frozenset({Channel.SMS}))
    gateway = _Named("http_gateway", frozenset({Channel.SMS}))
    own_twilio = _Named("twilio", frozenset({Channel.SMS}))
    own_meta = _Named("meta_whatsapp", frozenset({Channel.WHATSAPP}))
    sandbox = SandboxProvider(store)
    acts = VerificationActivities(
        code_secret=TEST_SECRETS.code_secret,
        sandbox=sandbox,
        live_providers={Channel.SMS: global_twilio},
        providers_by_name={"twilio": global_twilio, "http_gateway": gateway},
    )
    own: dict[str, Provider] = {"twilio": own_twilio, "meta_whatsapp": own_meta}
    assert acts.provider_for(Mode.LIVE, Channel.SMS, None, own) is own_twilio
    assert acts.provider_for(Mode.LIVE, Channel.SMS, "twilio", own) is own_twilio
    assert acts.provider_for(Mode.LIVE, Channel.SMS, "http_gateway", own) is gateway
    # A channel no global provider serves: the application's own account can.
    assert acts.provider_for(Mode.LIVE, Channel.WHATSAPP, None, own) is own_meta
    assert acts.provider_for(Mode.LIVE, Channel.SMS) is global_twilio
    assert acts.provider_for(Mode.TEST, Channel.SMS, None, own) is sandbox
    with pytest.raises(PermanentDeliveryError):
        acts.provider_for(Mode.LIVE, Channel.VOICE, None, own)
