"""A routing rule's sender through each adapter: Twilio From / MessagingServiceSid /
WhatsApp From, the HTTP gateway's sender field, Meta's sending phone number id."""

from __future__ import annotations

import dataclasses
import json

import pytest
from starlette.responses import Response

from otp.domain import Channel
from otp.domain.routing import Sender, SenderType
from providers.http_gateway import HttpGatewayProvider
from providers.meta_whatsapp import MetaWhatsAppProvider
from providers.twilio import TwilioProvider
from tests.helpers.scripted_provider import ProviderServer, Recorded, outbound
from tests.providers import test_http_gateway as gw
from tests.providers import test_meta_whatsapp as meta
from tests.providers import test_twilio as tw

MG = "MG" + "d" * 32


@pytest.mark.parametrize(
    ("channel", "sender_type", "value", "expected"),
    [
        (Channel.SMS, SenderType.ALPHANUMERIC, "ACME", {"From": "ACME"}),
        (Channel.SMS, SenderType.LONG_CODE, "+15005550009", {"From": "+15005550009"}),
        (Channel.SMS, SenderType.SHORT_CODE, "55555", {"From": "55555"}),
        (Channel.SMS, SenderType.MESSAGING_SERVICE, MG, {"MessagingServiceSid": MG}),
        (
            Channel.WHATSAPP,
            SenderType.WHATSAPP_SENDER,
            "+14155238899",
            {"From": "whatsapp:+14155238899"},
        ),
        (Channel.WHATSAPP, SenderType.MESSAGING_SERVICE, MG, {"MessagingServiceSid": MG}),
        (Channel.VOICE, SenderType.LONG_CODE, "+15005550010", {"From": "+15005550010"}),
    ],
)
def test_twilio_sends_from_the_rules_sender(
    server: ProviderServer,
    channel: Channel,
    sender_type: SenderType,
    value: str,
    expected: dict[str, str],
) -> None:
    provider = TwilioProvider(tw.config(server))
    message = dataclasses.replace(
        outbound(channel, code="482915"), sender=Sender(type=sender_type, value=value)
    )
    _, form = provider.build_request(message)
    sender_fields = {k: v for k, v in form.items() if k in {"From", "MessagingServiceSid"}}
    assert sender_fields == expected


def test_twilio_without_a_sender_keeps_its_configured_one(server: ProviderServer) -> None:
    _, form = TwilioProvider(tw.config(server)).build_request(outbound(Channel.SMS))
    assert form["From"] == "+15005550006"


async def test_gateway_sends_the_sender_field(server: ProviderServer) -> None:
    server.handler = gw.accepted
    provider = HttpGatewayProvider(gw.config(server))
    message = dataclasses.replace(
        outbound(Channel.SMS), sender=Sender(type=SenderType.ALPHANUMERIC, value="ACME")
    )
    await provider.send(message)
    await provider.send(outbound(Channel.SMS, key="ver_0123456789abcdef:2"))
    await provider.aclose()
    with_rule, without = (json.loads(r.body) for r in server.requests)
    assert with_rule["sender"] == "ACME"
    assert "sender" not in without  # the configured body, unchanged


async def test_gateway_template_can_place_the_sender(server: ProviderServer) -> None:
    server.handler = gw.accepted
    template = json.dumps({"to": "$to", "text": "$text", "from": "$sender"})
    provider = HttpGatewayProvider(gw.config(server, body_template=template))
    message = dataclasses.replace(
        outbound(Channel.SMS), sender=Sender(type=SenderType.SHORT_CODE, value="55555")
    )
    await provider.send(message)
    await provider.aclose()
    [req] = server.requests
    assert json.loads(req.body) == {"to": "+14155550123", "text": message.text, "from": "55555"}


async def test_meta_sends_from_the_rules_phone_number_id(server: ProviderServer) -> None:
    seen: list[str] = []

    def handler(req: Recorded) -> Response:
        seen.append(req.path)
        return meta.accepted(req)

    server.handler = handler
    provider = MetaWhatsAppProvider(meta.config(server))
    rule_sender = Sender(type=SenderType.WHATSAPP_SENDER, value="209876543210987")
    await provider.send(dataclasses.replace(outbound(Channel.WHATSAPP), sender=rule_sender))
    await provider.send(outbound(Channel.WHATSAPP, key="ver_0123456789abcdef:2"))
    await provider.aclose()
    assert seen == [
        "/v23.0/209876543210987/messages",
        f"/v23.0/{meta.PHONE_NUMBER_ID}/messages",
    ]
