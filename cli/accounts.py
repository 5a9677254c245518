"""`otp accounts list|set|remove|test`: an application's own provider accounts.

The same services as the admin API (`api.services.provider_accounts`), on the configured
store; `test` also needs Temporal and a running worker (the worker sends). Secrets are
never printed; give one as `--field auth_token=-` to type it at a hidden prompt (or pipe
it on stdin) rather than leaving it in the shell's history.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.common import AppOption, JsonOption, KeyMode, fail, in_store, print_json, table, when
from otp.settings import get_settings

if TYPE_CHECKING:
    from otp.store import Store
    from otp.store.tables import ProviderAccount

accounts_app = typer.Typer(
    help="An application's own provider accounts (Twilio, Meta, SMTP, HTTP gateway).",
    no_args_is_help=True,
)

ProviderOption = Annotated[
    str, typer.Option("--provider", help="twilio, meta_whatsapp, smtp or http_gateway.")
]


def _provider(name: str) -> Any:
    from api.schemas.provider_accounts import ProviderName

    try:
        return ProviderName(name)
    except ValueError:
        raise typer.BadParameter(
            "twilio, meta_whatsapp, smtp or http_gateway", param_hint="--provider"
        ) from None


def _public(row: ProviderAccount) -> dict[str, Any]:
    from api.schemas.provider_accounts import ProviderAccountPublic

    return ProviderAccountPublic.of(row, get_settings().public_url).model_dump(mode="json")


def _problem(exc: Exception) -> str:
    errors = getattr(exc, "extensions", {}).get("errors") or []
    details = "; ".join(f"{e['pointer'].removeprefix('#/')}: {e['detail']}" for e in errors)
    return f"{exc}" + (f" ({details})" if details else "")


def _read_secret(name: str) -> str:
    if sys.stdin.isatty():
        value: str = typer.prompt(name, hide_input=True)
        return value
    return sys.stdin.readline().rstrip("\n")


@accounts_app.command("list")
def list_accounts(application_id: AppOption, as_json: JsonOption = False) -> None:
    """List the application's accounts: which fields are set, never the secrets."""
    from api.problems import ApiProblem
    from api.services import provider_accounts as service

    async def work(store: Store) -> list[dict[str, Any]]:
        return [
            _public(r) for r in await service.list_accounts(store, application_id=application_id)
        ]

    try:
        accounts = in_store(work)
    except ApiProblem as exc:
        fail(_problem(exc))
    if as_json:
        print_json(accounts)
        return
    if not accounts:
        typer.echo(f"{application_id} has no provider account of its own: the global ones apply.")
        return
    rows = [["PROVIDER", "ID", "VERSION", "FIELDS", "SECRETS", "UPDATED"]]
    for a in accounts:
        rows.append(
            [
                a["provider"],
                a["id"],
                str(a["version"]),
                ",".join(sorted(a["fields"])),
                ",".join(sorted(a["secrets"])),
                when(_parse(a["updated_at"])),
            ]
        )
    table(rows)


def _parse(value: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(value)


@accounts_app.command("set")
def set_account(
    application_id: AppOption,
    provider: ProviderOption,
    field: Annotated[
        list[str],
        typer.Option(
            "--field",
            help="NAME=VALUE, repeated (e.g. account_sid=AC..., sms_from=+1...). "
            "NAME=- reads the value from a hidden prompt or stdin.",
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Create or replace an account (every field, secrets included: that is a rotation)."""
    from api.problems import ApiProblem
    from api.schemas.provider_accounts import ProviderAccountPut
    from api.services import provider_accounts as service
    from otp.settings import load_secrets

    name = _provider(provider)
    fields: dict[str, Any] = {}
    for item in field:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--field")
        fields[key.strip()] = _read_secret(key.strip()) if value == "-" else value
    settings = get_settings()
    secrets = load_secrets(settings)

    async def work(store: Store) -> tuple[dict[str, Any], bool]:
        row, created = await service.put_account(
            store,
            secrets,
            settings,
            application_id=application_id,
            provider=name,
            body=ProviderAccountPut(fields=fields),
        )
        return _public(row), created

    try:
        account, created = in_store(work)
    except ApiProblem as exc:
        fail(_problem(exc), 2)
    if as_json:
        print_json(account)
        return
    verb = "Created" if created else "Replaced"
    typer.echo(
        f"{verb} the {account['provider']} account {account['id']} of {application_id} "
        f"(version {account['version']}); secrets set: "
        f"{', '.join(sorted(account['secrets'])) or 'none'}."
    )


@accounts_app.command("remove")
def remove_account(application_id: AppOption, provider: ProviderOption) -> None:
    """Remove an account: the service's global account applies again (within seconds)."""
    from api.problems import ApiProblem
    from api.services import provider_accounts as service

    name = _provider(provider)

    async def work(store: Store) -> None:
        await service.delete_account(store, application_id=application_id, provider=name)

    try:
        in_store(work)
    except ApiProblem as exc:
        fail(_problem(exc))
    typer.echo(f"Removed the {name.value} account of {application_id}.")


@accounts_app.command("test")
def test_account(
    application_id: AppOption,
    provider: ProviderOption,
    to: Annotated[str, typer.Option("--to", help="A phone number (E.164) or email address.")],
    mode: Annotated[
        KeyMode, typer.Option(help="live: through the account; test: through the sandbox.")
    ] = KeyMode.LIVE,
    as_json: JsonOption = False,
) -> None:
    """Send one test message through the account (a worker must be running)."""
    from api.problems import ApiProblem
    from api.schemas.provider_accounts import ProviderAccountTest, ProviderAccountTestResult
    from api.services import provider_accounts as service
    from otp.domain import Mode
    from otp.settings import load_secrets
    from otp.temporal import connect

    name = _provider(provider)
    settings = get_settings()
    secrets = load_secrets(settings)

    async def work(store: Store) -> dict[str, Any]:
        try:
            client = await connect(settings, secrets)
        except RuntimeError as exc:
            fail(f"Temporal at {settings.temporal_target} did not answer ({exc})")
        result = await service.test_account(
            store,
            client,
            settings,
            application_id=application_id,
            provider=name,
            body=ProviderAccountTest(to=to),
            mode=Mode(mode.value),
        )
        return ProviderAccountTestResult.of(result, Mode(mode.value)).model_dump(mode="json")

    try:
        report = in_store(work)
    except ApiProblem as exc:
        fail(_problem(exc))
    if as_json:
        print_json(report)
    elif report["ok"]:
        typer.echo(f"Sent through {name.value} on {report['channel']}: {report['message_id']}.")
    else:
        error = report["error"]
        code = f" (provider code {error['code']})" if error.get("code") else ""
        typer.echo(f"Failed: {error['reason']}{code}: {error.get('message') or ''}")
    if not report["ok"]:
        raise typer.Exit(1)
