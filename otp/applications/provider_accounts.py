"""An application's own provider accounts: which fields each provider takes, which are secret.

An account holds the same fields as the service's global settings for that provider, named
without their prefix (`account_sid` for `OTP_TWILIO_ACCOUNT_SID`). `account_settings` lays an
account over the global `Settings`: every field of that provider is reset to its default
first, so nothing of the global account (a token, an API key) leaks into an account that
leaves it out. Secret fields (`SecretStr` in `Settings`) are sealed together as one JSON
object and never read back; a read shows which are set and, for long ones, a hint.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, create_model

from otp.routing import channels
from otp.routing.channels import provider_channels
from otp.security.sealing import seal, unseal
from otp.settings import Secrets, Settings

PROVIDERS: dict[str, str] = {
    channels.TWILIO: "twilio_",
    channels.META_WHATSAPP: "meta_",
    channels.SMTP: "smtp_",
    channels.HTTP_GATEWAY: "http_gateway_",
}
SEAL_PURPOSE = "provider_account.secrets"


def seal_purpose(application_id: str, provider: str) -> str:
    """The sealing purpose of one account's secrets: they cannot be moved to another row."""
    return f"{SEAL_PURPOSE}:{application_id}:{provider}"


# Fields an account cannot set: paths on the worker's disk.
_EXCLUDED = frozenset({"smtp_ca_file"})
# A secret this long or longer shows its last four characters in reads.
HINT_MIN_LENGTH = 16

ACCOUNT_QUERY_PARAMETER = "account"


class InvalidAccount(ValueError):
    """The fields do not make a usable account; `errors` are (field, message) pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {m}" for f, m in errors))
        self.errors = errors


def _is_secret(annotation: Any) -> bool:
    return "SecretStr" in str(annotation)


def provider_fields(provider: str) -> dict[str, str]:
    """Account field name -> `Settings` field name, for one provider."""
    prefix = PROVIDERS[provider]
    return {
        name.removeprefix(prefix): name
        for name in Settings.model_fields
        if name.startswith(prefix) and name not in _EXCLUDED
    }


def secret_fields(provider: str) -> frozenset[str]:
    """The account fields of `provider` that are sealed and never read back."""
    return frozenset(
        short
        for short, full in provider_fields(provider).items()
        if _is_secret(Settings.model_fields[full].annotation)
    )


_MODELS: dict[str, type[BaseModel]] = {}


def fields_model(provider: str) -> type[BaseModel]:
    """A pydantic model of `provider`'s account fields (unknown ones refused)."""
    if provider not in _MODELS:
        definitions: dict[str, Any] = {}
        for short, full in provider_fields(provider).items():
            info = Settings.model_fields[full]
            definitions[short] = (info.annotation | None, None)  # type: ignore[operator]
        _MODELS[provider] = create_model(
            f"{provider.title().replace('_', '')}AccountFields",
            __config__=ConfigDict(extra="forbid"),
            **definitions,
        )
    return _MODELS[provider]


@dataclass(frozen=True)
class AccountFields:
    """An account's fields split for storage: plain settings and secrets (in clear here)."""

    settings: dict[str, Any]
    secrets: dict[str, str]

    def hints(self) -> dict[str, dict[str, Any]]:
        """Which secrets are set, with the last four characters of long ones."""
        return {
            name: {
                "set": True,
                "hint": ("…" + value[-4:]) if len(value) >= HINT_MIN_LENGTH else None,
            }
            for name, value in sorted(self.secrets.items())
        }

    def sealed(self, secrets: Secrets, *, application_id: str, provider: str) -> str:
        """The secrets as one sealed value, bound to this application and provider."""
        return seal(
            secrets,
            json.dumps(self.secrets, sort_keys=True),
            purpose=seal_purpose(application_id, provider),
        )


def parse_fields(provider: str, raw: Mapping[str, Any], settings: Settings) -> AccountFields:
    """Validate an account's fields; `InvalidAccount` when they are unknown, of the wrong
    type, or do not make the provider usable (e.g. a Twilio account without a sender)."""
    try:
        parsed = fields_model(provider).model_validate(dict(raw))
    except ValidationError as exc:
        raise InvalidAccount(
            [(".".join(str(p) for p in e["loc"]) or "fields", e["msg"]) for e in exc.errors()]
        ) from None
    secret_names = secret_fields(provider)
    plain: dict[str, Any] = {}
    sealed: dict[str, str] = {}
    for name, value in parsed.model_dump(exclude_none=True).items():
        if name in secret_names:
            text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
            if text:
                sealed[name] = text
        else:
            plain[name] = value
    fields = AccountFields(plain, sealed)
    if provider == channels.SMTP and not plain.get("host"):
        raise InvalidAccount([("fields", _incomplete(provider))])
    if provider not in provider_channels(account_settings(settings, provider, fields)):
        raise InvalidAccount([("fields", _incomplete(provider))])
    return fields


def _incomplete(provider: str) -> str:
    return {
        channels.TWILIO: "a Twilio account needs account_sid, auth_token (or api_key_sid and "
        "api_key_secret) and a sender (sms_from, messaging_service_sid, voice_from, or "
        "whatsapp_from with whatsapp_content_sids)",
        channels.META_WHATSAPP: "a Meta account needs access_token and phone_number_id",
        channels.HTTP_GATEWAY: "an HTTP gateway account needs url",
        channels.SMTP: "an SMTP account needs host",
    }[provider]


def open_fields(
    secrets: Secrets,
    *,
    application_id: str,
    provider: str,
    settings: Mapping[str, Any],
    secrets_sealed: str,
) -> AccountFields:
    """A stored account's fields, its secrets unsealed (`SealError` if they cannot be)."""
    opened: dict[str, Any] = {}
    if secrets_sealed:
        purpose = seal_purpose(application_id, provider)
        opened = json.loads(unseal(secrets, secrets_sealed, purpose=purpose))
    return AccountFields(dict(settings), {str(k): str(v) for k, v in opened.items()})


def account_settings(settings: Settings, provider: str, fields: AccountFields) -> Settings:
    """The global `settings` with `provider`'s fields replaced by the account's (the others
    reset to their defaults, so none of the global account's credentials carry over)."""
    mapping = provider_fields(provider)
    update: dict[str, Any] = {
        full: Settings.model_fields[full].get_default(call_default_factory=True)
        for full in mapping.values()
    }
    for name, value in fields.settings.items():
        update[mapping[name]] = value
    for name, value in fields.secrets.items():
        update[mapping[name]] = SecretStr(value)
    return settings.model_copy(update=update)
