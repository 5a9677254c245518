"""The registry builds each configured provider from settings, in the configured order."""

from __future__ import annotations

from pydantic import SecretStr

from otp.domain import Channel
from otp.routing.channels import live_plan
from otp.settings import Settings
from providers.registry import build_providers
from providers.twilio import TwilioProvider

TWILIO: dict[str, object] = {
    "twilio_account_sid": "AC" + "1" * 32,
    "twilio_sms_from": "+15005550006",
    "public_url": "https://otp.example.com/",
}


def settings_with(**extra: object) -> Settings:
    return Settings.model_validate({**TWILIO, **extra})


def _twilio_callback(settings: Settings) -> str:
    provider = build_providers(settings)["twilio"]
    assert isinstance(provider, TwilioProvider)
    return provider._config.status_callback_url


def test_twilio_receipts_are_requested_only_when_they_can_be_verified() -> None:
    with_token = settings_with(twilio_auth_token=SecretStr("token"))
    assert _twilio_callback(with_token) == "https://otp.example.com/v1/webhooks/twilio/status"
    api_key_only = settings_with(
        twilio_api_key_sid="SK1", twilio_api_key_secret=SecretStr("secret")
    )
    # The webhook checks signatures with the auth token: without it, no callbacks at all.
    assert _twilio_callback(api_key_only) == ""


def test_only_configured_providers_are_built_and_planned_in_order() -> None:
    settings = settings_with(
        twilio_auth_token=SecretStr("token"),
        http_gateway_url="https://sms.example.com/send",
        sms_providers="http_gateway,twilio",
    )
    assert set(build_providers(settings)) == {"smtp", "twilio", "http_gateway"}
    plan = live_plan(settings)
    assert plan[Channel.SMS] == ["http_gateway", "twilio"]
    assert Channel.WHATSAPP not in plan and Channel.VOICE not in plan
    assert plan[Channel.EMAIL] == ["smtp"]


def test_every_http_provider_waits_for_its_answer_as_long_as_configured() -> None:
    settings = settings_with(
        twilio_auth_token=SecretStr("token"),
        http_gateway_url="https://sms.example.com/send",
        meta_access_token=SecretStr("meta-token"),
        meta_phone_number_id="106540352242922",
        provider_timeout_s=4,
    )
    providers = build_providers(settings)
    http = [providers[name] for name in ("twilio", "http_gateway", "meta_whatsapp")]
    assert [p._config.timeouts.read_s for p in http] == [4, 4, 4]  # type: ignore[attr-defined]
    assert Settings().provider_timeout_s == 15


def test_whatsapp_content_templates_are_read_as_locale_pairs() -> None:
    settings = settings_with(
        twilio_auth_token=SecretStr("token"),
        twilio_whatsapp_from="whatsapp:+15005550006",
        twilio_whatsapp_content_sids="en=HX1, fr = HX2,broken,=HX3,de=",
    )
    provider = build_providers(settings)["twilio"]
    assert isinstance(provider, TwilioProvider)
    assert provider._config.whatsapp_content_sids == {"en": "HX1", "fr": "HX2"}
