"""Routing rules: which providers, in which order, and which sender serve one destination.

A rule belongs to one application and one channel; it matches by country (ISO alpha-2)
and optionally an E.164 number prefix. For a destination the most specific rule wins:
the longest matching prefix of its country, then its country's rule without a prefix,
then the channel's default rule (no country). Without a rule, the global order
(`otp.routing.channels.live_plan`) applies unchanged.

A rule's providers are kept in its order but only those configured for the channel count;
when none of them is, the global order applies (the rule's sender still does). A default
rule's sender that a destination's country refuses (`otp.routing.facts`) is not used for
that country: the provider's own sender is. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from otp.domain import Channel
from otp.domain.routing import Sender, SenderType
from otp.routing.channels import HTTP_GATEWAY, META_WHATSAPP, SMTP, TWILIO
from otp.routing.facts import SenderCheck, check_sender

# Which channels each provider can serve at all (what it serves here depends on settings).
PROVIDER_CAPABILITIES: dict[str, frozenset[Channel]] = {
    TWILIO: frozenset({Channel.SMS, Channel.WHATSAPP, Channel.VOICE}),
    META_WHATSAPP: frozenset({Channel.WHATSAPP}),
    HTTP_GATEWAY: frozenset({Channel.SMS}),
    SMTP: frozenset({Channel.EMAIL}),
}

# The sender types each channel can use.
SENDER_TYPES: dict[Channel, frozenset[SenderType]] = {
    Channel.SMS: frozenset(
        {
            SenderType.ALPHANUMERIC,
            SenderType.LONG_CODE,
            SenderType.SHORT_CODE,
            SenderType.MESSAGING_SERVICE,
        }
    ),
    Channel.WHATSAPP: frozenset({SenderType.WHATSAPP_SENDER, SenderType.MESSAGING_SERVICE}),
    Channel.VOICE: frozenset({SenderType.LONG_CODE}),
    Channel.EMAIL: frozenset(),
}

_SENDER_FORMATS: dict[SenderType, tuple[re.Pattern[str], str]] = {
    # Twilio's rule: up to 11 of A-Z a-z 0-9 space - + _ &, not only digits.
    SenderType.ALPHANUMERIC: (
        re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 +_&-]{1,11}"),
        "1 to 11 letters, digits, spaces or - + _ &, with at least one letter",
    ),
    SenderType.LONG_CODE: (re.compile(r"\+[1-9][0-9]{6,14}"), "an E.164 number"),
    SenderType.SHORT_CODE: (re.compile(r"[0-9]{3,8}"), "3 to 8 digits"),
    SenderType.MESSAGING_SERVICE: (
        re.compile(r"MG[0-9a-fA-F]{32}"),
        "a Messaging Service SID (MG + 32 hex digits)",
    ),
    SenderType.WHATSAPP_SENDER: (
        re.compile(r"\+[1-9][0-9]{6,14}|[0-9]{5,20}"),
        "an E.164 number (Twilio) or a phone number id (Meta)",
    ),
}

PREFIX_RE = re.compile(r"\+[1-9][0-9]{0,14}")
COUNTRY_RE = re.compile(r"[A-Z]{2}")


class Match(StrEnum):
    PREFIX = "prefix"  # the country's rule for the longest matching number prefix
    COUNTRY = "country"  # the country's rule without a prefix
    DEFAULT = "default"  # the channel's default rule (no country)
    GLOBAL = "global"  # no rule: the global provider order


@dataclass(frozen=True)
class Rule:
    """One routing rule as the matcher sees it (`country`/`prefix` None: any)."""

    id: str
    channel: Channel
    country: str | None
    prefix: str | None
    providers: tuple[str, ...]
    sender: Sender | None


@dataclass(frozen=True)
class Route:
    """The route of one destination on one channel, and why."""

    match: Match
    rule: Rule | None
    providers: list[str]
    sender: Sender | None
    country: str | None
    reasons: list[str] = field(default_factory=list)


def sender_problem(channel: Channel, sender: Sender) -> str | None:
    """Why `sender` cannot be a sender on `channel` (None: it can)."""
    allowed = SENDER_TYPES[channel]
    if sender.type not in allowed:
        kinds = ", ".join(sorted(t.value for t in allowed)) or "none"
        return f"{channel.value} cannot send from a {sender.type.value} (sender types: {kinds})"
    pattern, expected = _SENDER_FORMATS[sender.type]
    if not pattern.fullmatch(sender.value):
        return f"a {sender.type.value} sender must be {expected}"
    return None


def provider_problem(channel: Channel, providers: Sequence[str]) -> str | None:
    """Why these providers cannot serve `channel` (None: each can)."""
    if len(set(providers)) != len(providers):
        return "a provider appears twice"
    for name in providers:
        served = PROVIDER_CAPABILITIES.get(name)
        if served is None:
            known = ", ".join(sorted(PROVIDER_CAPABILITIES))
            return f"unknown provider {name!r} (providers: {known})"
        if channel not in served:
            return f"{name} does not deliver {channel.value}"
    return None


def country_check(rule: Rule) -> SenderCheck | None:
    """What the rule's country says of its sender (a default rule has no country to check)."""
    if rule.sender is None or rule.country is None:
        return None
    return check_sender(rule.country, rule.channel, rule.sender.type)


def match_rule(
    rules: Sequence[Rule], channel: Channel, to: str, country: str | None
) -> tuple[Match, Rule | None]:
    """The most specific rule of `channel` for the destination `to` in `country`."""
    mine = [r for r in rules if r.channel is channel]
    if country is not None:
        by_prefix = [
            r for r in mine if r.country == country and r.prefix and to.startswith(r.prefix)
        ]
        if by_prefix:
            return Match.PREFIX, max(by_prefix, key=lambda r: len(r.prefix or ""))
        for rule in mine:
            if rule.country == country and not rule.prefix:
                return Match.COUNTRY, rule
    for rule in mine:
        if rule.country is None:
            return Match.DEFAULT, rule
    return Match.GLOBAL, None


def route(
    rules: Sequence[Rule],
    channel: Channel,
    to: str,
    country: str | None,
    available: Sequence[str],
) -> Route:
    """The providers (from `available`, the channel's global order) and sender for `to`."""
    match, rule = match_rule(rules, channel, to, country)
    if rule is None:
        reasons = [f"no routing rule for {channel.value}" + (f" in {country}" if country else "")]
        return Route(match, None, list(available), None, country, reasons)
    if match is Match.PREFIX:
        reasons = [f"country {country}, number prefix {rule.prefix}"]
    elif match is Match.COUNTRY:
        reasons = [f"country {country}"]
    else:
        reasons = [f"default rule of {channel.value}"]
    providers = [name for name in rule.providers if name in available]
    if not rule.providers:
        providers = list(available)
        reasons.append("the rule names no provider: the global order")
    elif not providers:
        providers = list(available)
        reasons.append("none of the rule's providers is configured: the global order")
    elif len(providers) < len(rule.providers):
        missing = [n for n in rule.providers if n not in available]
        reasons.append("not configured, skipped: " + ", ".join(missing))
    sender = rule.sender
    if sender is not None and country is not None and rule.country is None:
        check = check_sender(country, channel, sender.type)
        if check is not None and check.refused:
            reasons.append(
                f"the default sender is not used in {country} ({check.reason}; {check.source}): "
                "the provider's own sender"
            )
            sender = None
    return Route(match, rule, providers, sender, country, reasons)
