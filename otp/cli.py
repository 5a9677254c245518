"""The `otp` command: `otp dev`, `otp worker`, `otp api`, `otp ping`.

Every command leaves through `otp.process.run_and_exit`, so the process exit code
is the command's own even when the temporalio native runtime crashes while the
interpreter shuts down (sdk-python issue 300).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated, NoReturn

import typer

from otp.logs import setup_logging
from otp.process import run_and_exit
from otp.settings import get_settings

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
    from otp.devstack import run_dev_stack

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

    from otp import search_attributes

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


def _run() -> int:
    app(prog_name="otp")  # standalone mode: always raises SystemExit
    return 0


def main() -> NoReturn:
    """Console-script entry point."""
    run_and_exit(_run)


if __name__ == "__main__":
    main()
