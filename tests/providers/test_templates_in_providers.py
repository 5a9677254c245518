"""What providers make of templates: an application's WhatsApp template reaches the request
(a Meta template name and language, or a Twilio Content SID; else the configured one), and
every catalogue locale's voice wording is read by a voice of its language."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET

from otp.domain import Channel
from otp.messages.templates import LOCALES
from providers.meta_whatsapp import MetaWhatsAppConfig, build_payload
from providers.twilio import TwilioConfig, TwilioProvider, build_twiml
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


def test_every_catalogue_locale_is_read_by_a_voice_of_its_language() -> None:
    """The catalogue's voice wording and Twilio's `<Say>` voice speak the same language."""
    for locale in LOCALES:
        say = ET.fromstring(build_twiml("1", locale)).find("Say")
        assert say is not None
        spoken = say.get("language", "")
        language = locale.split("-")[0]
        expected = {"zh": ("cmn",), "ar": ("arb",)}.get(language, (language,))
        assert spoken.split("-")[0] in expected, (locale, spoken)
