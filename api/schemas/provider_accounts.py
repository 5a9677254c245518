"""Request and response models of /v1/admin/applications/{id}/provider-accounts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from api.schemas.base import RequestModel, ResponseModel
from otp.domain import Channel, Mode
from otp.domain.provider_check import ProviderCheckResult
from otp.store.tables import ProviderAccount


class ProviderName(StrEnum):
    TWILIO = "twilio"
    META_WHATSAPP = "meta_whatsapp"
    SMTP = "smtp"
    HTTP_GATEWAY = "http_gateway"


FieldValue = str | int | float | bool | None


class ProviderAccountPut(RequestModel):
    fields: dict[str, FieldValue] = Field(
        description="The account's fields, named like the provider's `OTP_` settings without "
        "the prefix: twilio `account_sid`, `auth_token`, `api_key_sid`, `api_key_secret`, "
        "`sms_from`, `messaging_service_sid`, `whatsapp_from`, `whatsapp_content_sids`, "
        "`voice_from`, `base_url`; meta_whatsapp `access_token`, `phone_number_id`, "
        "`app_secret`, `verify_token`, `template_name`, `api_version`, `base_url`; smtp "
        "`host`, `port`, `username`, `password`, `from`, `starttls`, `use_tls`, `timeout_s`, "
        "`allow_plaintext_auth`; http_gateway `url`, `auth_header`, `auth_value`, "
        "`body_template`, `message_id_path`, `idempotent`. The whole account is replaced: "
        "send every field, secrets included.",
        examples=[
            {
                "account_sid": "AC00000000000000000000000000000001",
                "auth_token": "your-auth-token",
                "sms_from": "+15005550006",
            }
        ],
    )


class SecretState(ResponseModel):
    set: bool = Field(description="Always true: only the secrets that are set are listed.")
    hint: str | None = Field(
        default=None, description="The last four characters of a secret of 16 or more."
    )


class ProviderAccountPublic(ResponseModel):
    id: str = Field(description="`pa_...`: also the `account` parameter of its receipt URLs.")
    application_id: str
    provider: ProviderName
    version: int = Field(description="Grows with every replacement.")
    fields: dict[str, Any] = Field(description="The fields that are not secret.")
    secrets: dict[str, SecretState] = Field(description="Which secret fields are set.")
    receipt_url: str | None = Field(
        default=None,
        description="Where this account's receipts arrive (Twilio: set by the adapter on each "
        "message; Meta: configure it as the app's webhook callback URL). None without "
        "`OTP_PUBLIC_URL`, and for SMTP and the HTTP gateway.",
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: ProviderAccount, public_url: str | None) -> ProviderAccountPublic:
        paths = {"twilio": "/v1/webhooks/twilio/status", "meta_whatsapp": "/v1/webhooks/meta"}
        path = paths.get(row.provider)
        url = f"{public_url.rstrip('/')}{path}?account={row.id}" if public_url and path else None
        return cls(
            id=row.id,
            application_id=row.application_id,
            provider=ProviderName(row.provider),
            version=row.version,
            fields=dict(row.settings),
            secrets={k: SecretState(**v) for k, v in row.secret_hints.items()},
            receipt_url=url,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class ProviderAccountList(ResponseModel):
    accounts: list[ProviderAccountPublic]


class ProviderAccountTest(RequestModel):
    to: str = Field(
        max_length=320,
        description="A phone number (E.164) or an email address, as the account's channel needs.",
        examples=["+15005550006"],
    )
    channel: Channel | None = Field(
        default=None,
        description="The channel to test (default: the account's first of sms, whatsapp, "
        "email, voice).",
    )


class ProviderError(ResponseModel):
    reason: str = Field(description="The adapter's reason: `invalid_number`, `auth_failed`, ...")
    code: str | None = Field(default=None, description="The provider's own error code.")
    message: str | None = Field(default=None, description="What went wrong (never a secret).")


class ProviderAccountTestResult(ResponseModel):
    ok: bool
    mode: Mode = Field(description="`live`: through the account; `test`: through the sandbox.")
    provider: ProviderName
    channel: Channel | None = None
    account_id: str | None = None
    account_version: int | None = None
    message_id: str | None = None
    error: ProviderError | None = None

    @classmethod
    def of(cls, result: ProviderCheckResult, mode: Mode) -> ProviderAccountTestResult:
        error = (
            None
            if result.ok
            else ProviderError(
                reason=result.error_reason or "failed",
                code=result.error_code,
                message=result.error_message,
            )
        )
        return cls(
            ok=result.ok,
            mode=mode,
            provider=ProviderName(result.provider),
            channel=result.channel,
            account_id=result.account_id,
            account_version=result.account_version,
            message_id=result.message_id,
            error=error,
        )
