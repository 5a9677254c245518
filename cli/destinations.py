"""`otp destinations export|erase`: what is held about one phone number or email address,
against the configured store and Temporal (see `api.services.erasure`)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.common import JsonOption, in_store, print_json
from otp.settings import get_settings

if TYPE_CHECKING:
    from otp.store import Store

destinations_app = typer.Typer(
    help="Export or erase everything held about one destination (GDPR art. 15 and 17).",
    no_args_is_help=True,
)

ApplicationOption = Annotated[
    str, typer.Option("--application", "--app", help="The application's id.")
]
ToOption = Annotated[str, typer.Option("--to", help="The phone number (E.164) or email address.")]
ModeOption = Annotated[str | None, typer.Option("--mode", help="live or test; leave out for both.")]
NoTemporalOption = Annotated[
    bool,
    typer.Option("--no-temporal", help="Store only: do not look up or delete Temporal executions."),
]


def _run(erase: bool, application_id: str, to: str, mode: str | None, temporal: bool) -> Any:
    from api.services import erasure
    from otp.domain import Mode
    from otp.domain.destinations import InvalidDestinationError
    from otp.settings import load_secrets
    from otp.store.applications import get_application

    settings = get_settings()
    if mode is not None and mode not in ("live", "test"):
        raise typer.BadParameter("live or test", param_hint="--mode")
    secrets = load_secrets(settings)
    try:  # bad input fails before anything is connected to
        erasure.subject_of(secret=secrets.code_secret, application_id="", to=to, mode=None)
    except InvalidDestinationError as exc:
        raise typer.BadParameter(str(exc), param_hint="--to") from None

    async def work(store: Store) -> erasure.Report:
        if await get_application(store, application_id=application_id) is None:
            raise typer.BadParameter(f"no application {application_id!r}")
        client = None
        if temporal:
            from otp.temporal import connect

            try:
                client = await connect(settings, secrets)
            except RuntimeError as exc:
                raise typer.BadParameter(
                    f"Temporal at {settings.temporal_target} did not answer ({exc}); "
                    "--no-temporal works on the store alone",
                    param_hint="--no-temporal",
                ) from None
        action = erasure.erase_destination if erase else erasure.export_destination
        return await action(
            store,
            client,
            secret=secrets.code_secret,
            application_id=application_id,
            to=to,
            mode=Mode(mode) if mode else None,
        )

    return dataclasses.asdict(in_store(work))


@destinations_app.command("export")
def export(
    application_id: ApplicationOption,
    to: ToOption,
    mode: ModeOption = None,
    no_temporal: NoTemporalOption = False,
) -> None:
    """Print, as JSON, every stored row and Temporal execution about the destination."""
    print_json(_run(False, application_id, to, mode, not no_temporal))


@destinations_app.command("erase")
def erase(
    application_id: ApplicationOption,
    to: ToOption,
    mode: ModeOption = None,
    no_temporal: NoTemporalOption = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Delete the destination's executions and rows; its verification rows stay, anonymised."""
    if not yes:
        typer.confirm(
            f"Erase everything held about this destination in {application_id}?", abort=True
        )
    report = _run(True, application_id, to, mode, not no_temporal)
    if as_json:
        print_json(report)
        return
    typer.echo(
        f"Erased {report['to']} in {application_id} ({', '.join(report['modes'])}): "
        f"{len(report['verification_ids'])} verifications, "
        f"{len(report['executions_deleted'])} executions deleted."
    )
    for table, count in report["tables"].items():
        typer.echo(f"  {table}: {count}")
