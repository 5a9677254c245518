"""`otp sandbox scenarios list|add|remove`: the failures test mode simulates, per application.

The same service as the admin API (`/v1/admin/applications/{id}/sandbox-scenarios`), so
the same validation; workers and API processes see a change within 5 s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.common import AppOption, JsonOption, fail, in_store, print_json, table, when

if TYPE_CHECKING:
    from otp.store import Store
    from otp.store.tables import SandboxScenarioRow

sandbox_app = typer.Typer(help="The sandbox (test mode).", no_args_is_help=True)
scenarios_app = typer.Typer(
    help="Sandbox scenarios: provider errors, delays, missing receipts, blocks, outages and "
    "webhook failures that test mode simulates.",
    no_args_is_help=True,
)
sandbox_app.add_typer(scenarios_app, name="scenarios")


def _json(row: SandboxScenarioRow) -> dict[str, Any]:
    """The scenario as the admin API answers it (the destination masked)."""
    from api.schemas.sandbox_scenarios import SandboxScenarioPublic

    return SandboxScenarioPublic.of(row).model_dump(mode="json")


def _run(work: Any) -> Any:
    """Run a service call in the store; its problem (404, 422) ends the command."""
    from api.problems import ApiProblem

    async def guarded(store: Store) -> Any:
        try:
            return await work(store)
        except ApiProblem as problem:
            return problem

    result = in_store(guarded)
    if isinstance(result, ApiProblem):
        errors = result.extensions.get("errors", [])
        details = [f"{e.get('pointer', '')}: {e.get('detail', '')}" for e in errors]
        fail("; ".join([result.detail or result.title, *details]), 2 if result.status == 422 else 1)
    return result


@scenarios_app.command("list")
def list_scenarios(application_id: AppOption = "default", as_json: JsonOption = False) -> None:
    """List the application's scenarios, newest first."""
    from api.services import sandbox_scenarios as service

    rows = _run(lambda store: service.list_scenarios(store, application_id=application_id))
    if as_json:
        print_json([_json(r) for r in rows])
        return
    if not rows:
        typer.echo(f"No sandbox scenarios for {application_id}.")
        return
    lines = [["ID", "KIND", "MATCH", "CHANNEL", "SETTING", "CREATED"]]
    for r in rows:
        target = r.to_masked or r.country or r.prefix or "(all webhooks)"
        setting = r.error_code or (f"{r.delay_s} s" if r.delay_s is not None else "")
        setting = setting or (str(r.status_code) if r.status_code else "-")
        lines.append([r.id, r.kind, target, r.channel or "any", setting, when(r.created_at)])
    table(lines)


@scenarios_app.command("add")
def add_scenario(
    kind: Annotated[
        str,
        typer.Argument(
            help="provider_error, delay, delivered_then_failed, "
            "no_receipt, fraud_block, provider_down or webhook_failure."
        ),
    ],
    application_id: AppOption = "default",
    to: Annotated[str | None, typer.Option(help="An exact test destination.")] = None,
    country: Annotated[str | None, typer.Option(help="ISO 3166-1 alpha-2, e.g. GB.")] = None,
    prefix: Annotated[str | None, typer.Option(help="A number prefix, e.g. +4474.")] = None,
    channel: Annotated[str | None, typer.Option(help="Only this channel.")] = None,
    error_code: Annotated[str | None, typer.Option(help="The provider error code.")] = None,
    delay_s: Annotated[
        int | None, typer.Option(help="Seconds (delay, delivered_then_failed).")
    ] = None,
    status_code: Annotated[int | None, typer.Option(help="webhook_failure: the status.")] = None,
    note: Annotated[str, typer.Option(help="Why it is there.")] = "",
    as_json: JsonOption = False,
) -> None:
    """Add a scenario (test mode only; it comes before the magic numbers)."""
    from pydantic import ValidationError

    from api.schemas.sandbox_scenarios import SandboxScenarioCreate
    from api.services import sandbox_scenarios as service
    from otp.settings import get_settings, load_secrets

    try:
        body = SandboxScenarioCreate.model_validate(
            {
                "kind": kind,
                "to": to,
                "country": country,
                "prefix": prefix,
                "channel": channel,
                "error_code": error_code,
                "delay_s": delay_s,
                "status_code": status_code,
                "note": note,
            }
        )
    except ValidationError as exc:
        fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()), 2)
    row = _run(
        lambda store: service.create_scenario(
            store,
            application_id=application_id,
            body=body,
            secret=load_secrets(get_settings()).code_secret,
        )
    )
    if as_json:
        print_json(_json(row))
    else:
        typer.echo(f"Added {row.id} ({row.kind}).")


@scenarios_app.command("remove")
def remove_scenario(
    scenario_id: Annotated[str, typer.Argument(help="sbs_...")],
    application_id: AppOption = "default",
) -> None:
    """Remove a scenario."""
    from api.services import sandbox_scenarios as service

    row = _run(
        lambda store: service.delete_scenario(
            store, application_id=application_id, scenario_id=scenario_id
        )
    )
    typer.echo(f"Removed {row.id} ({row.kind}).")
