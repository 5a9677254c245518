"""Twilio Verify v2 shapes: the form posts the `twilio` SDKs send and the JSON they read.

Requests are `application/x-www-form-urlencoded` with Twilio's parameter names (the
aliases); unknown parameters are refused (Twilio error 60200) rather than ignored.
Booleans are Twilio's `true` / `false`. Responses use Twilio's field names; the extra
fields this service adds start with `otp_` (the SDKs ignore unknown fields).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, IPvAnyAddress, WithJsonSchema

from api.schemas.base import RequestModel, ResponseModel
from otp.domain.constants import CODE_LENGTH_MAX, CODE_LENGTH_MIN


def _twilio_bool(value: object) -> object:
    """Only Twilio's spellings: `true` or `false` (any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError("must be true or false")


TwilioBool = Annotated[
    bool,
    BeforeValidator(_twilio_bool),
    WithJsonSchema({"type": "string", "enum": ["true", "false"]}),
]
Sid = Annotated[str, Field(min_length=34, max_length=34, pattern=r"^[A-Z]{2}[0-9a-f]{32}$")]
TwilioChannel = Literal["sms", "whatsapp", "call", "email"]

# Service parameters kept as given in `options` (no equivalent in this service).
SERVICE_OPTION_ALIASES = (
    "Push.IncludeDate",
    "Push.ApnCredentialSid",
    "Push.FcmCredentialSid",
    "Totp.Issuer",
    "Totp.TimeStep",
    "Totp.CodeLength",
    "Totp.Skew",
    "Whatsapp.MsgServiceSid",
    "Whatsapp.From",
)


class TwilioForm(RequestModel):
    """A form post; fields are read by their Twilio names."""


def _option(alias: str) -> Any:
    return Field(default=None, alias=alias, max_length=120)


class _ServiceFields(TwilioForm):
    code_length: int | None = Field(
        default=None, alias="CodeLength", ge=CODE_LENGTH_MIN, le=CODE_LENGTH_MAX
    )
    lookup_enabled: TwilioBool | None = Field(default=None, alias="LookupEnabled")
    skip_sms_to_landlines: TwilioBool | None = Field(default=None, alias="SkipSmsToLandlines")
    dtmf_input_required: TwilioBool | None = Field(default=None, alias="DtmfInputRequired")
    tts_name: str | None = Field(default=None, alias="TtsName", max_length=64)
    psd2_enabled: TwilioBool | None = Field(default=None, alias="Psd2Enabled")
    do_not_share_warning_enabled: TwilioBool | None = Field(
        default=None, alias="DoNotShareWarningEnabled"
    )
    custom_code_enabled: TwilioBool | None = Field(default=None, alias="CustomCodeEnabled")
    default_template_sid: str | None = Field(
        default=None, alias="DefaultTemplateSid", max_length=34
    )
    verify_event_subscription_enabled: TwilioBool | None = Field(
        default=None, alias="VerifyEventSubscriptionEnabled"
    )
    push_include_date: str | None = _option("Push.IncludeDate")
    push_apn_credential_sid: str | None = _option("Push.ApnCredentialSid")
    push_fcm_credential_sid: str | None = _option("Push.FcmCredentialSid")
    totp_issuer: str | None = _option("Totp.Issuer")
    totp_time_step: str | None = _option("Totp.TimeStep")
    totp_code_length: str | None = _option("Totp.CodeLength")
    totp_skew: str | None = _option("Totp.Skew")
    whatsapp_msg_service_sid: str | None = _option("Whatsapp.MsgServiceSid")
    whatsapp_from: str | None = _option("Whatsapp.From")

    def columns(self) -> dict[str, Any]:
        """The set parameters as table columns; the Push/Totp/WhatsApp ones in `options`."""
        fields: dict[str, Any] = {}
        options: dict[str, Any] = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            alias = type(self).model_fields[name].alias or name
            if alias in SERVICE_OPTION_ALIASES:
                options[alias] = value
            elif value is not None:
                fields[name] = value
        if options:
            fields["options"] = options
        return fields


class ServiceCreateForm(_ServiceFields):
    friendly_name: str = Field(alias="FriendlyName", min_length=1, max_length=64)


class ServiceUpdateForm(_ServiceFields):
    friendly_name: str | None = Field(
        default=None, alias="FriendlyName", min_length=1, max_length=64
    )


class VerificationCreateForm(TwilioForm):
    to: str = Field(alias="To", min_length=1, max_length=320)
    channel: TwilioChannel = Field(alias="Channel")
    custom_friendly_name: str | None = Field(
        default=None, alias="CustomFriendlyName", min_length=1, max_length=40
    )
    custom_message: str | None = Field(default=None, alias="CustomMessage", max_length=160)
    send_digits: str | None = Field(default=None, alias="SendDigits", max_length=32)
    locale: str | None = Field(default=None, alias="Locale", min_length=2, max_length=35)
    custom_code: str | None = Field(default=None, alias="CustomCode", max_length=10)
    amount: str | None = Field(default=None, alias="Amount", max_length=64)
    payee: str | None = Field(default=None, alias="Payee", max_length=64)
    rate_limits: str | None = Field(default=None, alias="RateLimits", max_length=4096)
    channel_configuration: str | None = Field(
        default=None, alias="ChannelConfiguration", max_length=4096
    )
    app_hash: str | None = Field(default=None, alias="AppHash", max_length=64)
    template_sid: str | None = Field(default=None, alias="TemplateSid", max_length=34)
    template_custom_substitutions: str | None = Field(
        default=None, alias="TemplateCustomSubstitutions", max_length=4096
    )
    device_ip: IPvAnyAddress | None = Field(default=None, alias="DeviceIp")
    risk_check: Literal["enable", "disable"] | None = Field(default=None, alias="RiskCheck")
    tags: str | None = Field(default=None, alias="Tags", max_length=4096)


class VerificationUpdateForm(TwilioForm):
    status: Literal["canceled", "approved"] = Field(alias="Status")


class VerificationCheckForm(TwilioForm):
    code: str = Field(alias="Code", min_length=1, max_length=64)
    to: str | None = Field(default=None, alias="To", min_length=1, max_length=320)
    verification_sid: Sid | None = Field(default=None, alias="VerificationSid")
    amount: str | None = Field(default=None, alias="Amount", max_length=64)
    payee: str | None = Field(default=None, alias="Payee", max_length=64)
    sna_client_token: str | None = Field(default=None, alias="SnaClientToken", max_length=512)


# ------------------------------------------------------------------ responses
class TwilioService(ResponseModel):
    sid: str
    account_sid: str
    friendly_name: str
    code_length: int
    lookup_enabled: bool
    psd2_enabled: bool
    skip_sms_to_landlines: bool
    dtmf_input_required: bool
    tts_name: str | None
    do_not_share_warning_enabled: bool
    custom_code_enabled: bool
    push: dict[str, Any]
    totp: dict[str, Any]
    default_template_sid: str | None
    whatsapp: dict[str, Any]
    passkeys: dict[str, Any] | None = None
    verify_event_subscription_enabled: bool
    date_created: datetime
    date_updated: datetime
    url: str
    links: dict[str, str]


class PageMeta(ResponseModel):
    """Twilio's paging: `key` names the list; `next_page_url` is absolute, or null."""

    page: int
    page_size: int
    first_page_url: str
    previous_page_url: str | None
    url: str
    next_page_url: str | None
    key: str


class TwilioServicePage(ResponseModel):
    services: list[TwilioService]
    meta: PageMeta


class SendCodeAttempt(ResponseModel):
    attempt_sid: str
    channel: str
    time: datetime


class TwilioVerification(ResponseModel):
    sid: str
    service_sid: str
    account_sid: str
    to: str
    channel: str
    status: str
    valid: bool
    lookup: dict[str, Any] = Field(default_factory=dict)
    amount: str | None = None
    payee: str | None = None
    send_code_attempts: list[SendCodeAttempt]
    sna: dict[str, Any] | None = None
    date_created: datetime
    date_updated: datetime
    url: str
    otp_verification_id: str = Field(description="This service's id of the verification.")
    otp_reason: str | None = Field(
        default=None, description="Why the verification ended, once it has."
    )


class TwilioVerificationCheck(ResponseModel):
    sid: str
    service_sid: str
    account_sid: str
    to: str
    channel: str
    status: str
    valid: bool
    amount: str | None = None
    payee: str | None = None
    sna_attempts_error_codes: list[dict[str, Any]] = Field(default_factory=list)
    date_created: datetime
    date_updated: datetime
    otp_attempts_remaining: int = Field(description="Checks left before the code is void.")


class TwilioError(ResponseModel):
    """Twilio's error body; `otp_status` and `otp_reason` say why a verification ended."""

    code: int
    message: str
    more_info: str
    status: int
    otp_status: str | None = Field(
        default=None, description="The status of the verification the request concerned."
    )
    otp_reason: str | None = Field(default=None, description="Why that verification ended.")


class TwilioAttempt(ResponseModel):
    """One send attempt (`VL...`): a `send_attempted` event of the event log."""

    sid: str
    account_sid: str
    service_sid: str
    verification_sid: str
    date_created: datetime
    date_updated: datetime
    conversion_status: Literal["converted", "unconverted"]
    channel: str
    price: dict[str, Any] | None = None
    channel_data: dict[str, Any]
    url: str


class TwilioAttemptPage(ResponseModel):
    attempts: list[TwilioAttempt]
    meta: PageMeta


class TwilioAttemptsSummary(ResponseModel):
    total_attempts: int
    total_converted: int
    total_unconverted: int
    conversion_rate_percentage: str
    url: str
