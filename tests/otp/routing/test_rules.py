"""Routing rules matching (most specific wins) and the route each destination gets."""

from __future__ import annotations

from otp.domain import Channel
from otp.domain.routing import Sender, SenderType
from otp.routing.rules import Match, Rule, provider_problem, route, sender_problem

ACME = Sender(type=SenderType.ALPHANUMERIC, value="ACME")
LONG = Sender(type=SenderType.LONG_CODE, value="+15005550009")
SHORT = Sender(type=SenderType.SHORT_CODE, value="55555")


def rule(id: str, country: str | None, prefix: str | None = None, **kw: object) -> Rule:
    return Rule(
        id=id,
        channel=kw.get("channel", Channel.SMS),  # type: ignore[arg-type]
        country=country,
        prefix=prefix,
        providers=kw.get("providers", ("twilio",)),  # type: ignore[arg-type]
        sender=kw.get("sender"),  # type: ignore[arg-type]
    )


RULES = [
    rule("default", None, sender=ACME),
    rule("us", "US", sender=LONG),
    rule("us415", "US", "+1415", sender=SHORT),
    rule("us4155", "US", "+14155", providers=("http_gateway", "twilio")),
    rule("wa", None, channel=Channel.WHATSAPP, providers=()),
]


def test_the_longest_prefix_wins_then_the_country_then_the_default() -> None:
    available = ["twilio", "http_gateway"]
    r = route(RULES, Channel.SMS, "+14155550123", "US", available)
    assert (r.match, r.rule and r.rule.id) == (Match.PREFIX, "us4155")
    assert r.providers == ["http_gateway", "twilio"]
    assert r.reasons[0] == "country US, number prefix +14155"
    r = route(RULES, Channel.SMS, "+14150000000", "US", available)
    assert (r.match, r.sender) == (Match.PREFIX, SHORT)
    r = route(RULES, Channel.SMS, "+12125550123", "US", available)
    assert (r.match, r.rule and r.rule.id, r.sender) == (Match.COUNTRY, "us", LONG)
    r = route(RULES, Channel.SMS, "+447400123456", "GB", available)
    assert (r.match, r.rule and r.rule.id, r.sender) == (Match.DEFAULT, "default", ACME)


def test_without_a_rule_the_global_order_applies_unchanged() -> None:
    r = route([], Channel.SMS, "+14155550123", "US", ["twilio", "http_gateway"])
    assert (r.match, r.rule, r.sender) == (Match.GLOBAL, None, None)
    assert r.providers == ["twilio", "http_gateway"]
    r = route(RULES, Channel.VOICE, "+14155550123", "US", ["twilio"])
    assert r.match is Match.GLOBAL


def test_a_default_sender_a_country_refuses_is_not_used_there() -> None:
    only_default = [rule("default", None, sender=ACME)]
    r = route(only_default, Channel.SMS, "+5511987654321", "BR", ["twilio"])
    assert r.match is Match.DEFAULT
    assert r.sender is None
    assert "not used in BR" in r.reasons[-1]


def test_unconfigured_providers_are_skipped_or_the_global_order_applies() -> None:
    r = route(RULES, Channel.SMS, "+14155550123", "US", ["twilio"])
    assert r.providers == ["twilio"]
    assert "not configured, skipped: http_gateway" in r.reasons
    r = route(
        [rule("x", "US", providers=("http_gateway",))], Channel.SMS, "+1212", "US", ["twilio"]
    )
    assert r.providers == ["twilio"]
    r = route(RULES, Channel.WHATSAPP, "+14155550123", "US", ["meta_whatsapp"])
    assert (r.match, r.providers) == (Match.DEFAULT, ["meta_whatsapp"])


def test_sender_and_provider_validation() -> None:
    assert sender_problem(Channel.SMS, ACME) is None
    assert sender_problem(Channel.SMS, Sender(type=SenderType.ALPHANUMERIC, value="12345"))
    assert sender_problem(Channel.SMS, Sender(type=SenderType.ALPHANUMERIC, value="A" * 12))
    assert sender_problem(Channel.SMS, Sender(type=SenderType.LONG_CODE, value="5550009"))
    assert sender_problem(Channel.WHATSAPP, ACME)
    assert sender_problem(Channel.EMAIL, LONG)
    assert sender_problem(Channel.SMS, Sender(type=SenderType.MESSAGING_SERVICE, value="MG1"))
    assert provider_problem(Channel.SMS, ["twilio", "http_gateway"]) is None
    assert provider_problem(Channel.SMS, ["meta_whatsapp"]) == "meta_whatsapp does not deliver sms"
    assert provider_problem(Channel.SMS, ["nope"])
    assert provider_problem(Channel.SMS, ["twilio", "twilio"]) == "a provider appears twice"
