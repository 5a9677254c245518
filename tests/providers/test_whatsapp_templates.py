"""An application's WhatsApp template (from its message template) reaches the provider's
request: a Meta template name and language, or a Twilio Content SID; else the configured."""

from __future__ import annotations

import dataclasses

from otp.domain import Channel
from providers.meta_whatsapp import MetaWhatsAppConfig, build_payload
from providers.twilio import TwilioConfig, TwilioProvider
from tests.helpers.scripted_provider import outbound

META = MetaWhatsAppConfig(phone_number_id="1065", access_token="t", template_name="otp_copy_code")
CONFIGURED_SID = "HX" + "e" * 32
OWN_SID = "HX" + "a" * 32


def test_meta_sends_the_applications_template_and_language() -> None:
    message = outbound(Channel.WHATSAPP, locale="fr")
    default = build_payload(message, META)["template"]
    assert (default["name"], default["language"]) == ("otp_copy_code", {"code": "fr"})
    own = dataclasses.replace(
        message, whatsapp_template_name="acme_login", whatsapp_language="fr_CA"
    )
    sent = build_payload(own, META)["template"]
    assert (sent["name"], sent["language"]) == ("acme_login", {"code": "fr_CA"})
    named_only = dataclasses.replace(message, whatsapp_template_name="acme_login")
    assert build_payload(named_only, META)["template"]["language"] == {"code": "fr"}
    # A Twilio Content SID means nothing to Meta: its configured template is sent.
    twilio_sid = dataclasses.replace(message, whatsapp_template_name=OWN_SID)
    assert build_payload(twilio_sid, META)["template"]["name"] == "otp_copy_code"


def test_twilio_sends_the_applications_content_sid() -> None:
    provider = TwilioProvider(
        TwilioConfig(
            account_sid="AC" + "a1" * 16,
            auth_token="x",
            whatsapp_from="+14155238886",
            whatsapp_content_sids={"en": CONFIGURED_SID},
        )
    )
    message = outbound(Channel.WHATSAPP)
    assert provider.build_request(message)[1]["ContentSid"] == CONFIGURED_SID
    own = dataclasses.replace(message, whatsapp_template_name=OWN_SID)
    assert provider.build_request(own)[1]["ContentSid"] == OWN_SID
    meta_name = dataclasses.replace(message, whatsapp_template_name="acme_login")
    assert provider.build_request(meta_name)[1]["ContentSid"] == CONFIGURED_SID
