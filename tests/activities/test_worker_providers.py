"""The worker builds each configured provider from settings, in the configured order."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from otp.domain import Channel
from otp.settings import Settings
from providers.channels import live_plan
from providers.twilio import TwilioProvider
from worker import build_providers

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


def test_workflow_modules_get_a_bytecode_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sandbox re-imports the workflow module per workflow: it must not recompile it."""
    import importlib.util

    import workflows.verification
    from worker import precompile_workflows

    source = Path(workflows.verification.__file__)
    cached = Path(importlib.util.cache_from_source(str(source)))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    if cached.exists():
        cached.unlink()
    assert precompile_workflows()
    assert cached.exists() and cached.stat().st_mtime >= source.stat().st_mtime
