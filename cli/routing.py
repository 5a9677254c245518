"""`otp routing list|add|remove|explain`: an application's routing rules.

The same service as the admin API (`api.services.routing`): a rule a country's facts
refuse is refused here too, with the same reason and source. API processes see a change
within 5 s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.common import AppOption, JsonOption, fail, in_store, print_json, table

if TYPE_CHECKING:
    from otp.store import Store

routing_app = typer.Typer(
    help="Routing rules: providers and sender per channel, country and number prefix.",
    no_args_is_help=True,
)

ChannelOption = Annotated[str, typer.Option(help="sms, whatsapp, voice or email.")]


def _run(work: Any) -> Any:
    from api.problems import ApiProblem

    async def guarded(store: Store) -> Any:
        try:
            return await work(store)
        except ApiProblem as problem:
            errors = problem.extensions.get("errors") or []
            details = "; ".join(f"{e.get('pointer', '')} {e['detail']}".strip() for e in errors)
            return (problem.detail or problem.title) + (f" ({details})" if details else "")

    result = in_store(guarded)
    if isinstance(result, str):
        fail(result)
    return result


def _sender_text(sender: Any) -> str:
    return f"{sender.type.value}:{sender.value}" if sender else "-"


@routing_app.command("list")
def list_rules(application_id: AppOption, as_json: JsonOption = False) -> None:
    """List the application's routing rules."""
    from api.services import routing

    rules = _run(lambda store: routing.list_rules(store, application_id))
    if as_json:
        print_json([rule.model_dump(mode="json") for rule in rules])
        return
    if not rules:
        typer.echo(f"No routing rules for {application_id}: the global order applies.")
        return
    lines = [["ID", "CHANNEL", "COUNTRY", "PREFIX", "PROVIDERS", "SENDER"]]
    for rule in rules:
        lines.append(
            [
                rule.id,
                rule.channel.value,
                rule.country or "(default)",
                rule.prefix or "-",
                ",".join(rule.providers) or "(global)",
                _sender_text(rule.sender),
            ]
        )
    table(lines)


@routing_app.command("add")
def add_rule(
    application_id: AppOption,
    channel: ChannelOption = "sms",
    country: Annotated[
        str | None, typer.Option(help="ISO alpha-2; none: the channel's default.")
    ] = None,
    prefix: Annotated[str | None, typer.Option(help="E.164 prefix within the country.")] = None,
    providers: Annotated[
        str, typer.Option(help="Comma-separated, in failover order (empty: global).")
    ] = "",
    sender_type: Annotated[
        str | None,
        typer.Option(
            help="alphanumeric, long_code, short_code, messaging_service or whatsapp_sender."
        ),
    ] = None,
    sender: Annotated[str | None, typer.Option(help="The sender's value.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Add a routing rule (refused when a country's sender rules forbid it)."""
    from pydantic import ValidationError

    from api.schemas.routing import RoutingRuleWrite
    from api.services import routing
    from api.services.risk_caches import RiskCaches

    if (sender_type is None) != (sender is None):
        fail("--sender-type and --sender go together", 2)
    try:
        body = RoutingRuleWrite.model_validate(
            {
                "channel": channel,
                "country": country,
                "prefix": prefix,
                "providers": [p.strip() for p in providers.split(",") if p.strip()],
                "sender": {"type": sender_type, "value": sender} if sender_type else None,
            }
        )
    except ValidationError as exc:
        fail(f"invalid rule: {exc.errors()[0]['msg']}", 2)
    rule = _run(lambda store: routing.save_rule(store, RiskCaches(), application_id, body))
    if as_json:
        print_json(rule.model_dump(mode="json"))
        return
    typer.echo(f"Added {rule.id}.")
    for warning in rule.warnings:
        typer.echo(f"Warning: {warning}")


@routing_app.command("remove")
def remove_rule(
    application_id: AppOption,
    rule_id: Annotated[str, typer.Argument(help="rte_...")],
) -> None:
    """Delete a routing rule."""
    from api.services import routing
    from api.services.risk_caches import RiskCaches

    async def work(store: Store) -> bool:
        await routing.delete_rule(store, RiskCaches(), application_id, rule_id)
        return True

    _run(work)
    typer.echo(f"Removed {rule_id}.")


@routing_app.command("explain")
def explain(
    application_id: AppOption,
    to: Annotated[str, typer.Option(help="E.164 number (or email for the email channel).")],
    channel: ChannelOption = "sms",
    as_json: JsonOption = False,
) -> None:
    """Which rule, providers and sender a live send to --to would use, and why."""
    from api.services import routing
    from otp.domain import Channel
    from otp.settings import get_settings

    try:
        chosen = Channel(channel)
    except ValueError:
        fail(f"unknown channel {channel!r}", 2)
    found = _run(
        lambda store: routing.explain(store, get_settings(), application_id, to=to, channel=chosen)
    )
    if as_json:
        print_json(found.model_dump(mode="json"))
        return
    typer.echo(f"{found.channel.value} to {found.to} ({found.country or 'no country'}):")
    typer.echo(
        f"  match:     {found.match.value}" + (f" ({found.rule_id})" if found.rule_id else "")
    )
    typer.echo(f"  providers: {', '.join(found.providers) or '(none configured)'}")
    typer.echo(f"  sender:    {_sender_text(found.sender)}")
    for reason in found.reasons:
        typer.echo(f"  why:       {reason}")
