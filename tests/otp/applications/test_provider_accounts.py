"""Provider account fields: validation, sealing, hints, and laying them over the settings."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from otp.applications.provider_accounts import (
    InvalidAccount,
    account_settings,
    open_fields,
    parse_fields,
    secret_fields,
)
from otp.routing.channels import provider_channels
from otp.security.sealing import SealError
from otp.settings import Settings
from tests.conftest import TEST_SECRETS

GLOBAL = Settings(
    twilio_account_sid="AC" + "1" * 32,
    twilio_auth_token=SecretStr("global-token"),
    twilio_api_key_sid="SK" + "1" * 32,
    twilio_api_key_secret=SecretStr("global-api-secret"),
    twilio_sms_from="+15005550006",
)
OWN = {"account_sid": "AC" + "2" * 32, "auth_token": "own-token-0123456789", "sms_from": "+1500"}


def test_secret_fields_are_the_settings_secrets() -> None:
    assert secret_fields("twilio") == {"auth_token", "api_key_secret"}
    assert secret_fields("meta_whatsapp") == {"access_token", "app_secret", "verify_token"}
    assert secret_fields("smtp") == {"password"}
    assert secret_fields("http_gateway") == {"auth_value"}


def test_fields_split_into_settings_and_secrets_with_hints() -> None:
    fields = parse_fields("twilio", OWN, GLOBAL)
    assert fields.settings == {"account_sid": OWN["account_sid"], "sms_from": "+1500"}
    assert fields.secrets == {"auth_token": OWN["auth_token"]}
    assert fields.hints() == {"auth_token": {"set": True, "hint": "…6789"}}
    short = parse_fields("twilio", {**OWN, "auth_token": "short"}, GLOBAL)
    assert short.hints() == {"auth_token": {"set": True, "hint": None}}


def test_sealed_secrets_open_again_and_never_show_in_clear() -> None:
    fields = parse_fields("twilio", OWN, GLOBAL)
    sealed = fields.sealed(TEST_SECRETS, application_id="app_1", provider="twilio")
    assert OWN["auth_token"] not in sealed
    opened = open_fields(
        TEST_SECRETS,
        application_id="app_1",
        provider="twilio",
        settings=fields.settings,
        secrets_sealed=sealed,
    )
    assert opened == fields
    # Bound to its application and provider: copied to another row, it does not open.
    with pytest.raises(SealError):
        open_fields(
            TEST_SECRETS,
            application_id="app_2",
            provider="twilio",
            settings=fields.settings,
            secrets_sealed=sealed,
        )


@pytest.mark.parametrize(
    ("provider", "raw", "field"),
    [
        ("twilio", {**OWN, "colour": "red"}, "colour"),
        ("twilio", {**OWN, "sms_from": None, "account_sid": OWN["account_sid"]}, "fields"),
        ("twilio", {"auth_token": "t", "sms_from": "+1500"}, "fields"),
        ("smtp", {"port": "not a port", "host": "mail"}, "port"),
        ("smtp", {"port": 25}, "fields"),
        ("meta_whatsapp", {"access_token": "t"}, "fields"),
        ("http_gateway", {"auth_value": "v"}, "fields"),
    ],
)
def test_unusable_fields_are_refused(provider: str, raw: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidAccount) as caught:
        parse_fields(provider, raw, GLOBAL)
    assert field in [name for name, _ in caught.value.errors]


def test_an_account_never_inherits_the_global_credentials() -> None:
    fields = parse_fields("twilio", OWN, GLOBAL)
    laid = account_settings(GLOBAL, "twilio", fields)
    assert laid.twilio_account_sid == OWN["account_sid"]
    assert laid.twilio_auth_token == SecretStr(OWN["auth_token"])
    assert laid.twilio_api_key_sid is None and laid.twilio_api_key_secret is None
    assert laid.twilio_base_url == Settings().twilio_base_url
    assert "twilio" in provider_channels(laid)
    # The other providers and the global settings object are untouched.
    assert laid.smtp_host == GLOBAL.smtp_host
    assert GLOBAL.twilio_auth_token == SecretStr("global-token")
