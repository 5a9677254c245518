"""Which providers serve which channel in live mode, in failover order, from settings.

Shared by the API (what a live key may plan, and each step's provider list) and the
worker (which adapters to build). A provider counts only when its settings are complete.
"""

from __future__ import annotations

from otp.domain import Channel
from otp.settings import Settings

TWILIO = "twilio"
META_WHATSAPP = "meta_whatsapp"
HTTP_GATEWAY = "http_gateway"
SMTP = "smtp"
SANDBOX = "sandbox"


def twilio_channels(settings: Settings) -> frozenset[Channel]:
    if not settings.twilio_account_sid or not (
        settings.twilio_auth_token
        or (settings.twilio_api_key_sid and settings.twilio_api_key_secret)
    ):
        return frozenset()
    channels: set[Channel] = set()
    if settings.twilio_sms_from or settings.twilio_messaging_service_sid:
        channels.add(Channel.SMS)
    if settings.twilio_whatsapp_content_sids and (
        settings.twilio_whatsapp_from or settings.twilio_messaging_service_sid
    ):
        channels.add(Channel.WHATSAPP)
    if settings.twilio_voice_from:
        channels.add(Channel.VOICE)
    return frozenset(channels)


def provider_channels(settings: Settings) -> dict[str, frozenset[Channel]]:
    """Each configured provider and the channels it can serve."""
    out: dict[str, frozenset[Channel]] = {SMTP: frozenset({Channel.EMAIL})}
    if twilio := twilio_channels(settings):
        out[TWILIO] = twilio
    if settings.meta_access_token and settings.meta_phone_number_id:
        out[META_WHATSAPP] = frozenset({Channel.WHATSAPP})
    if settings.http_gateway_url:
        out[HTTP_GATEWAY] = frozenset({Channel.SMS})
    return out


def _order(settings: Settings, channel: Channel) -> list[str]:
    raw = getattr(settings, f"{channel.value}_providers")
    return [name.strip() for name in str(raw).split(",") if name.strip()]


def live_plan(settings: Settings) -> dict[Channel, list[str]]:
    """Channel -> configured providers in failover order (channels without one are absent)."""
    available = provider_channels(settings)
    plan: dict[Channel, list[str]] = {}
    for channel in Channel:
        names = [n for n in _order(settings, channel) if channel in available.get(n, frozenset())]
        if names:
            plan[channel] = names
    return plan
