"""The activity wiring: each channel's default provider, the recorder and the limiter."""

from __future__ import annotations

from pydantic import SecretStr

from activities.wiring import WorkflowReceiptSink, build_activities, webhook_dispatcher
from otp.domain import Channel
from otp.settings import Settings
from otp.store import Store
from providers.http_gateway import HttpGatewayProvider
from providers.smtp import SmtpProvider
from providers.twilio import TwilioProvider
from tests.conftest import TEST_SECRETS


async def test_each_channel_gets_the_first_provider_of_its_plan(store: Store) -> None:
    settings = Settings(
        twilio_account_sid="AC" + "1" * 32,
        twilio_auth_token=SecretStr("token"),
        twilio_sms_from="+15005550006",
        http_gateway_url="https://sms.example.com/send",
        sms_providers="http_gateway,twilio",
    )
    activities = build_activities(settings, TEST_SECRETS, store)
    try:
        live = activities.verification._live
        assert isinstance(live[Channel.SMS], HttpGatewayProvider)
        assert isinstance(live[Channel.EMAIL], SmtpProvider)
        assert isinstance(activities.verification._by_name["twilio"], TwilioProvider)
        assert activities.webhooks is not None and activities.limiter is not None
    finally:
        await activities.aclose()


async def test_without_a_client_no_webhook_is_dispatched(store: Store) -> None:
    assert webhook_dispatcher(None, store, Settings()) is None


async def test_the_sandbox_receipts_are_logged_by_the_recorder(store: Store) -> None:
    sink = WorkflowReceiptSink(client=None)  # type: ignore[arg-type]  # never signals here
    activities = build_activities(Settings(), TEST_SECRETS, store, receipts=sink)
    try:
        assert sink.recorder is activities.records._recorder
    finally:
        await activities.aclose()
