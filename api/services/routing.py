"""Routing rules of an application: validated on save against the country facts, and the
route a destination would take (used by the explain route and by every live create).

A save that breaks a country's facts (an alphanumeric sender for the US, say) is refused
with `sender-not-allowed` and changes nothing; a sender that needs registration there is
saved with a warning. Saves and deletes clear this process's cache of the application's
rules; other API processes see them within `RULES_CACHE_S`.
"""

from __future__ import annotations

import phonenumbers
from sqlalchemy.exc import IntegrityError

from api.problems import (
    RoutingRuleConflict,
    RoutingRuleNotFound,
    SenderNotAllowed,
    field_error,
    invalid,
    param_error,
)
from api.schemas.routing import (
    RouteExplanation,
    RoutingRulePublic,
    RoutingRuleWrite,
    SenderPublic,
)
from api.services.applications import require_application
from api.services.risk_caches import RiskCaches
from otp.domain import Channel
from otp.domain.destinations import InvalidDestinationError, mask, parse_destination
from otp.domain.routing import Sender
from otp.routing.channels import live_plan
from otp.routing.rules import (
    COUNTRY_RE,
    PREFIX_RE,
    Route,
    Rule,
    country_check,
    provider_problem,
    route,
    sender_problem,
)
from otp.settings import Settings
from otp.store import Store
from otp.store import routing_rules as store_rules
from otp.store.tables import RoutingRuleRow


def _public(row: RoutingRuleRow) -> RoutingRulePublic:
    rule = store_rules.as_rule(row)
    check = country_check(rule)
    warnings = [f"{check.reason} ({check.source})"] if check and not check.refused else []
    return RoutingRulePublic(
        id=row.id,
        application_id=row.application_id,
        channel=rule.channel,
        country=rule.country,
        prefix=rule.prefix,
        providers=list(rule.providers),
        sender=SenderPublic(type=rule.sender.type, value=rule.sender.value)
        if rule.sender
        else None,
        warnings=warnings,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def validated(body: RoutingRuleWrite) -> Rule:
    """The rule `body` describes, or a problem: 422 with `errors`, or `sender-not-allowed`."""
    errors: list[dict[str, str]] = []
    country = body.country.upper() if body.country else None
    if country is not None and not COUNTRY_RE.fullmatch(country):
        errors.append(field_error("#/country", "an ISO 3166-1 alpha-2 code", "invalid_country"))
    elif country is not None and phonenumbers.country_code_for_region(country) == 0:
        errors.append(field_error("#/country", f"unknown country {country}", "invalid_country"))
    prefix = body.prefix or None
    if prefix is not None:
        if country is None:
            errors.append(field_error("#/prefix", "a prefix needs a country", "prefix_country"))
        elif not PREFIX_RE.fullmatch(prefix):
            errors.append(
                field_error("#/prefix", "an E.164 prefix: + and digits", "invalid_prefix")
            )
        elif COUNTRY_RE.fullmatch(country):
            calling = str(phonenumbers.country_code_for_region(country))
            if not prefix[1:].startswith(calling):
                errors.append(
                    field_error(
                        "#/prefix",
                        f"{prefix} is not within {country} (calling code +{calling})",
                        "prefix_country",
                    )
                )
    if country is not None and body.channel is Channel.EMAIL:
        errors.append(field_error("#/country", "email has no country", "invalid_country"))
    if problem := provider_problem(body.channel, body.providers):
        errors.append(field_error("#/providers", problem, "invalid_provider"))
    sender = Sender(type=body.sender.type, value=body.sender.value) if body.sender else None
    if sender is not None and (problem := sender_problem(body.channel, sender)):
        errors.append(field_error("#/sender", problem, "invalid_sender"))
    if errors:
        raise invalid(errors)
    rule = Rule(
        id="",
        channel=body.channel,
        country=country,
        prefix=prefix,
        providers=tuple(body.providers),
        sender=sender,
    )
    check = country_check(rule)
    if check is not None and check.refused and sender is not None:
        raise SenderNotAllowed(
            country=check.country,
            sender_type=sender.type.value,
            reason=check.reason,
            source=check.source,
        )
    return rule


async def list_rules(store: Store, application_id: str) -> list[RoutingRulePublic]:
    await require_application(store, application_id)
    return [
        _public(row) for row in await store_rules.list_rules(store, application_id=application_id)
    ]


async def save_rule(
    store: Store,
    caches: RiskCaches,
    application_id: str,
    body: RoutingRuleWrite,
    *,
    rule_id: str | None = None,
) -> RoutingRulePublic:
    """Create a rule (`rule_id` None) or replace one; refused when another holds its match."""
    await require_application(store, application_id)
    if rule_id is not None and (
        await store_rules.get_rule(store, application_id=application_id, rule_id=rule_id) is None
    ):
        raise RoutingRuleNotFound()
    rule = validated(body)
    same = await store_rules.find_same_match(
        store,
        application_id=application_id,
        channel=rule.channel.value,
        country=rule.country or "",
        prefix=rule.prefix or "",
    )
    if same is not None and same.id != rule_id:
        raise RoutingRuleConflict(same.id)
    try:
        row = await store_rules.save_rule(
            store,
            application_id=application_id,
            channel=rule.channel.value,
            country=rule.country or "",
            prefix=rule.prefix or "",
            providers=rule.providers,
            sender=rule.sender,
            rule_id=rule_id,
        )
    except IntegrityError:  # a concurrent save took the same match
        raise RoutingRuleConflict("") from None
    caches.clear_rules()
    return _public(row)


async def delete_rule(store: Store, caches: RiskCaches, application_id: str, rule_id: str) -> None:
    await require_application(store, application_id)
    if not await store_rules.delete_rule(store, application_id=application_id, rule_id=rule_id):
        raise RoutingRuleNotFound()
    caches.clear_rules()


def route_of(
    rules: list[Rule], settings: Settings, channel: Channel, to: str, country: str | None
) -> Route:
    """The live route of one destination (providers from the channel's configured ones)."""
    return route(rules, channel, to, country, live_plan(settings).get(channel, []))


async def explain(
    store: Store, settings: Settings, application_id: str, *, to: str, channel: Channel
) -> RouteExplanation:
    """Which rule, providers and sender a live send to `to` on `channel` would use."""
    await require_application(store, application_id)
    try:
        destination = parse_destination(to, channel)
    except InvalidDestinationError as exc:
        raise invalid(
            [param_error("query", "to", f"invalid destination for {channel.value}: {exc}")]
        ) from None
    rules = await store_rules.rules_of(store, application_id=application_id)
    found = route_of(rules, settings, channel, destination.value, destination.country)
    return RouteExplanation(
        channel=channel,
        to=mask(destination.value),
        country=found.country,
        match=found.match,
        rule_id=found.rule.id if found.rule else None,
        providers=found.providers,
        sender=SenderPublic(type=found.sender.type, value=found.sender.value)
        if found.sender
        else None,
        reasons=found.reasons,
    )
