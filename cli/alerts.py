"""`otp alerts list|rules|set-rules`: an application's alerts and alert rules.

The same services as the admin API (`api.services.alerts`): rules are replaced whole from
a JSON file (`{}` gives every default); refused rules print each broken field and exit 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.common import AppOption, JsonOption, fail, in_store_or_fail, print_json, table, when

if TYPE_CHECKING:
    from otp.store import Store

alerts_app = typer.Typer(
    help="Alerts the worker raised, and the rules it evaluates.", no_args_is_help=True
)


def list_alerts(
    application_id: AppOption,
    state: Annotated[str | None, typer.Option("--state", help="firing or resolved.")] = None,
    mode: Annotated[str | None, typer.Option("--mode", help="test or live.")] = None,
    as_json: JsonOption = False,
) -> None:
    """The application's alerts, newest first."""
    from api.services import alerts as service
    from otp.domain import Mode

    if state not in (None, "firing", "resolved"):
        raise typer.BadParameter("firing or resolved", param_hint="--state")
    if mode not in (None, "test", "live"):
        raise typer.BadParameter("test or live", param_hint="--mode")

    async def work(store: Store) -> Any:
        return await service.list_alerts(
            store,
            application_id=application_id,
            mode=Mode(mode) if mode else None,
            state=state,
            limit=100,
        )

    found = in_store_or_fail(work)
    if as_json:
        print_json(found.model_dump(mode="json"))
        return
    if not found.alerts:
        typer.echo("no alerts")
        return
    rows = [["ID", "MODE", "RULE", "SCOPE", "STATE", "STARTED", "RESOLVED"]]
    for a in found.alerts:
        rows.append(
            [a.id, a.mode, a.rule, a.scope, a.state, when(a.started_at), when(a.resolved_at)]
        )
    table(rows)


def show_rules(application_id: AppOption) -> None:
    """The rules in force, as JSON (edit and give back to `set-rules`)."""
    from api.services import alerts as service

    async def work(store: Store) -> Any:
        return await service.get_rules(store, application_id=application_id)

    print_json(in_store_or_fail(work).model_dump(mode="json"))


def set_rules(
    application_id: AppOption,
    file: Annotated[Path, typer.Option("--file", help="The rules as JSON ({} for defaults).")],
) -> None:
    """Replace the application's alert rules."""
    from pydantic import ValidationError

    from api.services import alerts as service
    from otp.alerts.rules import AlertRules

    try:
        rules = AlertRules.model_validate(json.loads(file.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        if isinstance(exc, ValidationError):
            lines = [f"  {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
            fail("invalid alert rules\n" + "\n".join(lines), 2)
        fail(f"cannot read {file}: {exc}", 2)

    async def work(store: Store) -> Any:
        return await service.put_rules(store, application_id=application_id, rules=rules)

    in_store_or_fail(work)
    typer.echo("alert rules replaced")


alerts_app.command("list")(list_alerts)
alerts_app.command("rules")(show_rules)
alerts_app.command("set-rules")(set_rules)
