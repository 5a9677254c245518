"""The `otp` command: `otp dev`, `otp worker`, `otp api`, `otp ping`, `otp apps`, `otp keys`,
`otp risk`, `otp verifications`, `otp replay`, `otp accounts`.

Every command leaves through `otp.process.run_and_exit`, so the process exit code
is the command's own even when the temporalio native runtime crashes while the
interpreter shuts down (sdk-python issue 300).
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from cli.common import AppOption, JsonOption, KeyMode, fail, in_store, print_json, table, when
from otp.observability.logs import setup_logging
from otp.process import run_and_exit
from otp.settings import get_settings

if TYPE_CHECKING:
    from otp.applications.model import ApiKeyPublic, ApplicationPublic
    from otp.store import Store

T = TypeVar("T")

app = typer.Typer(
    name="otp",
    help="Self-hosted OTP verification service on Temporal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def dev() -> None:
    """Run the whole dev stack: Temporal dev server, worker and API (Ctrl-C stops all)."""
    from cli.devstack import run_dev_stack

    raise typer.Exit(run_dev_stack(get_settings()))


@app.command()
def worker() -> None:
    """Run a worker for the verification workflow and its activities."""
    import worker as worker_module

    raise typer.Exit(worker_module.main())


@app.command()
def api() -> None:
    """Serve the HTTP API with uvicorn on OTP_API_HOST:OTP_API_PORT."""
    import uvicorn

    settings = get_settings()
    # Our handler and formatter for every logger (uvicorn's included): structured fields
    # such as the RPC status of a failed Temporal call are kept, and JSON works in production.
    setup_logging(settings.log_level, settings.log_format)
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        log_config=None,
    )


async def check_temporal(target: str, namespace: str, timeout_s: float) -> None:
    """Connect to Temporal and check its health and the namespace; raise on any failure."""
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
    from temporalio.client import Client

    async def probe() -> None:
        client = await Client.connect(target, namespace=namespace)
        rpc_timeout = timedelta(seconds=timeout_s)
        if not await client.service_client.check_health(timeout=rpc_timeout):
            raise RuntimeError("the health service answered NOT_SERVING")
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=namespace), timeout=rpc_timeout
        )

    await asyncio.wait_for(probe(), timeout_s)


@app.command()
def ping(
    timeout: Annotated[float, typer.Option(help="Seconds before giving up.")] = 5.0,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print nothing when healthy.")
    ] = False,
) -> None:
    """Check that Temporal (OTP_TEMPORAL_ADDRESS or host:port) is reachable and healthy."""
    settings = get_settings()
    target, namespace = settings.temporal_target, settings.temporal_namespace
    try:
        asyncio.run(check_temporal(target, namespace, timeout))
    except Exception as exc:
        reason = str(exc) or type(exc).__name__
        if isinstance(exc, TimeoutError):
            reason = f"no answer within {timeout:g} s"
        typer.echo(
            f"Temporal is not reachable at {target} (namespace {namespace}): {reason}\n"
            "Start it with `otp dev`, or point OTP_TEMPORAL_ADDRESS at a running server.",
            err=True,
        )
        raise typer.Exit(1) from None
    if not quiet:
        typer.echo(f"Temporal at {target} is healthy (namespace {namespace})")


async def register_search_attributes(target: str, namespace: str) -> list[str]:
    """Add the custom search attributes the namespace lacks; return the names added."""
    from temporalio.client import Client

    from otp.observability import search_attributes

    client = await Client.connect(target, namespace=namespace)
    return await search_attributes.register(client)


@app.command("temporal-setup")
def temporal_setup() -> None:
    """Register the custom search attributes on a Temporal cluster (idempotent).

    The dev server gets them as start flags; a real cluster (docker-compose) needs this
    once per namespace.
    """
    settings = get_settings()
    target, namespace = settings.temporal_target, settings.temporal_namespace
    added = asyncio.run(register_search_attributes(target, namespace))
    if added:
        typer.echo(f"Registered search attributes on {target} ({namespace}): {', '.join(added)}")
    else:
        typer.echo(f"Search attributes already registered on {target} ({namespace})")


# ------------------------------------------------------------- applications and keys
apps_app = typer.Typer(
    help="Applications: their defaults, allowed channels and keys (straight in the store).",
    no_args_is_help=True,
)
keys_app = typer.Typer(
    help="API keys of an application: create (shown once), list, revoke.", no_args_is_help=True
)
app.add_typer(apps_app, name="apps")
app.add_typer(keys_app, name="keys")


def _describe(application: ApplicationPublic) -> None:
    defaults = application.defaults.model_dump(mode="json", exclude_none=True)
    allowed = ", ".join(c.value for c in application.allowed_channels) or "all"
    typer.echo(f"{application.id}  {application.name}")
    typer.echo(f"  brand             {application.brand or '-'}")
    typer.echo(f"  allowed channels  {allowed}")
    typer.echo(f"  defaults          {json.dumps(defaults) if defaults else '-'}")
    typer.echo(f"  created           {when(application.created_at)}")
    typer.echo(f"  updated           {when(application.updated_at)}")


def _key_rows(keys: list[ApiKeyPublic]) -> list[list[str]]:
    rows = [["ID", "MODE", "HINT", "NAME", "CREATED", "LAST USED", "STATUS"]]
    for key in keys:
        status = f"revoked {when(key.revoked_at)}" if key.revoked_at else "active"
        rows.append(
            [
                key.id,
                key.mode.value,
                key.hint,
                key.name or "-",
                when(key.created_at),
                when(key.last_used_at),
                status,
            ]
        )
    return rows


@apps_app.command("create")
def apps_create(
    name: Annotated[str, typer.Option(help="Name for people (not shown to users).")],
    brand: Annotated[str, typer.Option(help="Name shown in messages.")] = "",
    defaults: Annotated[
        str | None,
        typer.Option(
            help='Request defaults as JSON, e.g. \'{"code_length": 8, "channels": '
            '[{"channel": "sms", "timeout_s": 30}]}\'.'
        ),
    ] = None,
    channels: Annotated[
        str | None,
        typer.Option("--allowed-channels", help="Comma-separated channels allowed (default: all)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create an application."""
    from pydantic import ValidationError

    from otp.applications.model import BRAND_MAX, NAME_MAX, ApplicationDefaults, ApplicationPolicy
    from otp.domain import Channel
    from otp.store.applications import create_application

    if not 1 <= len(name) <= NAME_MAX or len(brand) > BRAND_MAX:
        fail(f"--name takes 1 to {NAME_MAX} characters, --brand at most {BRAND_MAX}", 2)
    try:
        policy = ApplicationPolicy(
            defaults=ApplicationDefaults.model_validate_json(defaults or "{}"),
            allowed_channels=[Channel(c.strip()) for c in (channels or "").split(",") if c.strip()],
        )
    except (ValidationError, ValueError) as exc:
        fail(f"invalid application settings: {exc}", 2)
    application = in_store(
        lambda store: create_application(
            store,
            name=name,
            brand=brand,
            defaults=policy.defaults,
            allowed_channels=policy.allowed_channels,
        )
    )
    if as_json:
        print_json(application.model_dump(mode="json"))
    else:
        _describe(application)


@apps_app.command("list")
def apps_list(as_json: JsonOption = False) -> None:
    """List applications, oldest first."""
    from otp.store.applications import list_applications

    applications = in_store(lambda store: list_applications(store, limit=10_000))
    if as_json:
        print_json([a.model_dump(mode="json") for a in applications])
        return
    rows = [["ID", "NAME", "BRAND", "ALLOWED", "CREATED"]]
    for a in applications:
        allowed = ",".join(c.value for c in a.allowed_channels) or "all"
        rows.append([a.id, a.name, a.brand or "-", allowed, when(a.created_at)])
    table(rows)


@apps_app.command("show")
def apps_show(
    application_id: Annotated[str, typer.Argument(help="`app_...` or `default`.")],
    as_json: JsonOption = False,
) -> None:
    """Show an application and its keys."""
    from otp.store.applications import get_application, list_api_keys

    async def read(store: Store) -> tuple[ApplicationPublic | None, list[ApiKeyPublic]]:
        application = await get_application(store, application_id=application_id)
        keys = await list_api_keys(store, application_id=application_id) if application else []
        return application, keys

    application, keys = in_store(read)
    if application is None:
        fail(f"no application {application_id!r}")
    if as_json:
        print_json(
            {
                **application.model_dump(mode="json"),
                "keys": [k.model_dump(mode="json") for k in keys],
            }
        )
        return
    _describe(application)
    typer.echo("")
    if keys:
        table(_key_rows(keys))
    else:
        typer.echo(f"No keys yet: otp keys create --app {application.id} --mode test")


@keys_app.command("create")
def keys_create(
    application_id: AppOption,
    mode: Annotated[KeyMode, typer.Option(help="test: sandbox only; live: real delivery.")],
    name: Annotated[str, typer.Option(help="Name for people, e.g. staging.")] = "",
    as_json: JsonOption = False,
) -> None:
    """Create an API key. The key is printed this once: only its hash is stored."""
    from otp.applications.model import NAME_MAX
    from otp.domain import Mode
    from otp.store.applications import ApplicationNotFoundError, create_api_key

    if len(name) > NAME_MAX:
        fail(f"--name takes at most {NAME_MAX} characters", 2)
    try:
        created = in_store(
            lambda store: create_api_key(
                store, application_id=application_id, mode=Mode(mode.value), name=name
            )
        )
    except ApplicationNotFoundError:
        fail(f"no application {application_id!r}")
    if as_json:
        print_json({"key": created.key, **created.api_key.model_dump(mode="json")})
        return
    typer.echo(f"Created {mode.value} key {created.api_key.id} for application {application_id}:")
    typer.echo("")
    typer.echo(f"  {created.key}")
    typer.echo("")
    typer.echo("Store it now: it is never shown again (only its hash is kept).")


@keys_app.command("list")
def keys_list(
    application_id: AppOption,
    as_json: JsonOption = False,
) -> None:
    """List an application's keys (hints only), revoked ones included."""
    from otp.store.applications import get_application, list_api_keys

    async def read(store: Store) -> list[ApiKeyPublic] | None:
        if await get_application(store, application_id=application_id) is None:
            return None
        return await list_api_keys(store, application_id=application_id)

    keys = in_store(read)
    if keys is None:
        fail(f"no application {application_id!r}")
    if as_json:
        print_json([k.model_dump(mode="json") for k in keys])
    elif keys:
        table(_key_rows(keys))
    else:
        typer.echo(f"No keys for {application_id}.")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="`key_...` (see `otp keys list`).")],
    as_json: JsonOption = False,
) -> None:
    """Revoke a key for good. Running API processes refuse it within 10 seconds."""
    from otp.store.applications import revoke_api_key

    revoked = in_store(lambda store: revoke_api_key(store, key_id=key_id))
    if revoked is None:
        fail(f"no key {key_id!r}")
    if as_json:
        print_json(revoked.model_dump(mode="json"))
    else:
        typer.echo(f"Revoked {revoked.id} ({revoked.hint}) at {when(revoked.revoked_at)}.")


# -------------------------------------------------------------------- risk blocks
risk_app = typer.Typer(
    help="Risk blocks (countries and number prefixes refused per application and mode), "
    "lockouts and the safe list.",
    no_args_is_help=True,
)
app.add_typer(risk_app, name="risk")

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration_s(text: str) -> int:
    """`90` (seconds), `30m`, `6h` or `7d` in seconds; BadParameter otherwise."""
    raw = text.strip().lower()
    unit = _DURATION_UNITS.get(raw[-1:], 0) if raw else 0
    number = raw[:-1] if unit else raw
    if not number.isdigit() or int(number) <= 0:
        raise typer.BadParameter("a duration is a number of seconds, or like 30m, 6h, 7d")
    return int(number) * (unit or 1)


def _block_rows(blocks: list[Any]) -> list[list[str]]:
    from otp.store.risk_blocks import is_active

    rows = [["ID", "MODE", "SCOPE", "VALUE", "KIND", "LEVEL", "CREATED", "UNTIL", "STATUS"]]
    for b in blocks:
        if b.lifted_at is not None:
            state = f"lifted {when(b.lifted_at)} by {b.lifted_by or '-'}"
        else:
            state = "active" if is_active(b) else "expired"
        rows.append(
            [
                b.id,
                b.mode,
                b.scope,
                b.value,
                "auto" if b.automatic else "manual",
                str(b.level) if b.automatic else "-",
                when(b.created_at),
                when(b.expires_at) if b.expires_at else "lifted",
                state,
            ]
        )
    return rows


@risk_app.command("blocks")
def risk_blocks_list(
    application_id: AppOption,
    mode: Annotated[KeyMode | None, typer.Option(help="Only this mode's blocks.")] = None,
    recent_days: Annotated[
        int, typer.Option(min=0, help="Also ended blocks made this many days back.")
    ] = 7,
    as_json: JsonOption = False,
) -> None:
    """List the blocks in force, and the recent ones (newest first)."""
    from otp.store.risk_blocks import list_blocks
    from otp.store.tables import utcnow

    blocks = in_store(
        lambda store: list_blocks(
            store,
            application_id=application_id,
            mode=mode.value if mode else None,
            since=utcnow() - timedelta(days=recent_days),
        )
    )
    if as_json:
        print_json([b.model_dump(mode="json") for b in blocks])
    elif blocks:
        table(_block_rows(blocks))
        for b in blocks:
            typer.echo(f"  {b.id}: {b.reason}")
    else:
        typer.echo(f"No risk blocks for {application_id}.")


class BlockScopeOption(StrEnum):
    COUNTRY = "country"
    PREFIX = "prefix"


@risk_app.command("block")
def risk_block(
    application_id: AppOption,
    mode: Annotated[KeyMode, typer.Option(help="The mode whose sends are refused.")],
    scope: Annotated[BlockScopeOption, typer.Option(help="country or prefix.")],
    value: Annotated[str, typer.Option(help="A country (US) or a number prefix (+1415555).")],
    reason: Annotated[str, typer.Option(help="Why, for the record.")] = "blocked by an operator",
    duration: Annotated[
        str | None, typer.Option(help="How long: seconds, or 30m, 6h, 7d (default: until lifted).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Block a country or number prefix: its sends are refused before any provider call."""
    from otp.store.applications import get_application
    from otp.store.risk_blocks import create_block, normalize_value

    try:
        normalized = normalize_value(scope.value, value)
    except ValueError as exc:
        fail(f"invalid --value: {exc}", 2)
    if not 1 <= len(reason) <= 200:
        fail("--reason takes 1 to 200 characters", 2)
    seconds = _duration_s(duration) if duration is not None else None

    async def block(store: Store) -> Any:
        if await get_application(store, application_id=application_id) is None:
            return None
        return await create_block(
            store,
            application_id=application_id,
            mode=mode.value,
            scope=scope.value,
            value=normalized,
            reason=reason,
            automatic=False,
            duration_s=seconds,
        )

    created = in_store(block)
    if created is None:
        fail(f"no application {application_id!r}")
    if as_json:
        print_json(created.model_dump(mode="json"))
        return
    until = when(created.expires_at) if created.expires_at else "lifted"
    typer.echo(
        f"Blocked {created.scope} {created.value} for {application_id} ({created.mode}) "
        f"until {until}: {created.id}"
    )


@risk_app.command("lift")
def risk_lift(
    block_id: Annotated[str, typer.Argument(help="`blk_...` (see `otp risk blocks`).")],
    by: Annotated[str, typer.Option(help="Who lifts it, for the record.")] = "cli",
    as_json: JsonOption = False,
) -> None:
    """Lift a block now. The next automatic block of the same scope still lasts longer."""
    from otp.store.risk_blocks import lift_block

    lifted = in_store(lambda store: lift_block(store, block_id=block_id, lifted_by=by))
    if lifted is None:
        fail(f"no risk block {block_id!r}")
    if as_json:
        print_json(lifted.model_dump(mode="json"))
    else:
        typer.echo(
            f"Lifted {lifted.id} ({lifted.scope} {lifted.value}) at {when(lifted.lifted_at)}."
        )


# ------------------------------------------------------------------- operations
from cli.operations import replay as _replay_command  # noqa: E402
from cli.operations import verifications_app  # noqa: E402

app.add_typer(verifications_app, name="verifications")
app.command("replay")(_replay_command)

# ------------------------------------------------------------ lockouts and safe list
from cli import risk as _lockouts  # noqa: E402

risk_app.command("lockouts")(_lockouts.lockouts)
risk_app.command("unlock")(_lockouts.unlock)
risk_app.add_typer(_lockouts.safe_list_app, name="safe-list")

from cli.destinations import destinations_app  # noqa: E402

app.add_typer(destinations_app, name="destinations")

from cli.sandbox import sandbox_app  # noqa: E402

app.add_typer(sandbox_app, name="sandbox")
from cli.routing import routing_app  # noqa: E402

app.add_typer(routing_app, name="routing")
from cli.accounts import accounts_app  # noqa: E402

app.add_typer(accounts_app, name="accounts")

from cli.templates import templates_app  # noqa: E402

app.add_typer(templates_app, name="templates")
from cli.prices import prices_app  # noqa: E402

app.add_typer(prices_app, name="prices")
from cli.alerts import alerts_app  # noqa: E402

app.add_typer(alerts_app, name="alerts")

from cli.console import console_app  # noqa: E402

app.add_typer(console_app, name="console")


def _run() -> int:
    app(prog_name="otp")  # standalone mode: always raises SystemExit
    return 0


def main() -> NoReturn:
    """Console-script entry point."""
    run_and_exit(_run)


if __name__ == "__main__":
    main()
