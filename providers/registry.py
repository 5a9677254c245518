"""Builds the live provider adapters that a settings object asks for.

Which providers count as configured, and in which order they serve each channel, is
decided beside this module (`otp.routing.channels`); this module turns those settings into
adapter objects, sharing one HTTP connection pool when one is given.
"""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Callable
from urllib.parse import urlencode

import httpx
from pydantic import SecretStr

from otp.routing import channels
from otp.routing.channels import provider_channels
from otp.settings import Settings
from providers.base import Provider
from providers.http import HttpTimeouts
from providers.http_gateway import HttpGatewayConfig, HttpGatewayProvider
from providers.meta_whatsapp import MetaWhatsAppConfig, MetaWhatsAppProvider
from providers.smtp import SmtpConfig, SmtpProvider
from providers.twilio import TwilioConfig, TwilioProvider


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value() if value is not None else ""


def _pairs(raw: str | None) -> dict[str, str]:
    """`a=1,b=2` -> {"a": "1", "b": "2"}."""
    out: dict[str, str] = {}
    for item in (raw or "").split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip() and value.strip():
            out[key.strip()] = value.strip()
    return out


def build_providers(
    settings: Settings, http: httpx.AsyncClient | None = None
) -> dict[str, Provider]:
    """Every configured live provider by name (see otp.routing.channels for what "configured" means)."""
    configured = provider_channels(settings)
    return {
        name: build_provider(settings, name, http)
        for name in (channels.SMTP, channels.TWILIO, channels.META_WHATSAPP, channels.HTTP_GATEWAY)
        if name in configured
    }


def build_provider(
    settings: Settings,
    name: str,
    http: httpx.AsyncClient | None = None,
    *,
    account_id: str | None = None,
) -> Provider:
    """The adapter of provider `name` from `settings` (`KeyError` for an unknown name).

    `account_id`: the adapter sends for an application's own account (settings laid over
    by `otp.applications.provider_accounts.account_settings`); its Twilio status callbacks
    carry `account=<id>`, so the receipt is checked with that account's token.
    """
    return _BUILDERS[name](settings, http, account_id)


def _timeouts(settings: Settings) -> HttpTimeouts:
    return HttpTimeouts(read_s=settings.provider_timeout_s)


def _smtp(settings: Settings, http: httpx.AsyncClient | None, account_id: str | None) -> Provider:
    return SmtpProvider(
        SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            username=settings.smtp_username,
            password=_secret(settings.smtp_password) or None,
            start_tls=settings.smtp_starttls,
            use_tls=settings.smtp_use_tls,
            timeout_s=settings.smtp_timeout_s,
            allow_plaintext_auth=settings.smtp_allow_plaintext_auth,
            tls_context=(
                ssl.create_default_context(cafile=settings.smtp_ca_file)
                if settings.smtp_ca_file
                else None
            ),
        )
    )


def _twilio(settings: Settings, http: httpx.AsyncClient | None, account_id: str | None) -> Provider:
    callback_base = (settings.public_url or "").rstrip("/")
    callback = ""
    # Receipts need a public URL and the auth token their signature is checked with;
    # without both, steps fall back on their timers only.
    if callback_base and settings.twilio_auth_token:
        callback = f"{callback_base}/v1/webhooks/twilio/status"
        if account_id:
            callback += "?" + urlencode({"account": account_id})
    return TwilioProvider(
        TwilioConfig(
            account_sid=settings.twilio_account_sid or "",
            auth_token=_secret(settings.twilio_auth_token),
            api_key_sid=settings.twilio_api_key_sid or "",
            api_key_secret=_secret(settings.twilio_api_key_secret),
            sms_from=settings.twilio_sms_from or "",
            messaging_service_sid=settings.twilio_messaging_service_sid or "",
            whatsapp_from=settings.twilio_whatsapp_from or "",
            whatsapp_content_sids=_pairs(settings.twilio_whatsapp_content_sids),
            voice_from=settings.twilio_voice_from or "",
            status_callback_url=callback,
            base_url=settings.twilio_base_url,
            timeouts=_timeouts(settings),
        ),
        http,
    )


def _meta(settings: Settings, http: httpx.AsyncClient | None, account_id: str | None) -> Provider:
    return MetaWhatsAppProvider(
        MetaWhatsAppConfig(
            phone_number_id=settings.meta_phone_number_id or "",
            access_token=_secret(settings.meta_access_token),
            template_name=settings.meta_template_name,
            api_version=settings.meta_api_version,
            base_url=settings.meta_base_url,
            timeouts=_timeouts(settings),
        ),
        http,
    )


def _gateway(
    settings: Settings, http: httpx.AsyncClient | None, account_id: str | None
) -> Provider:
    gateway = HttpGatewayConfig(
        url=settings.http_gateway_url or "",
        auth_header_name=settings.http_gateway_auth_header,
        auth_header_value=_secret(settings.http_gateway_auth_value),
        message_id_path=settings.http_gateway_message_id_path,
        honours_idempotency_key=settings.http_gateway_idempotent,
        timeouts=_timeouts(settings),
    )
    if settings.http_gateway_body_template:
        gateway = dataclasses.replace(gateway, body_template=settings.http_gateway_body_template)
    return HttpGatewayProvider(gateway, http)


_BUILDERS: dict[str, Callable[[Settings, httpx.AsyncClient | None, str | None], Provider]] = {
    channels.SMTP: _smtp,
    channels.TWILIO: _twilio,
    channels.META_WHATSAPP: _meta,
    channels.HTTP_GATEWAY: _gateway,
}
