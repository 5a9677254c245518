"""What every `otp` command shares: its options, the store it works on, and its output.

Commands import these when they run, not when the app is built, except the typer option
types; nothing here touches the store or the network at import time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from otp.settings import get_settings

if TYPE_CHECKING:
    from otp.store import Store

T = TypeVar("T")

AppOption = Annotated[str, typer.Option("--app", help="The application's id.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


class KeyMode(StrEnum):
    TEST = "test"
    LIVE = "live"


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `message` on stderr and end the command with exit status `code`."""
    typer.echo(message, err=True)
    raise typer.Exit(code)


def in_store(work: Callable[[Store], Awaitable[T]]) -> T:
    """Run `work` against the configured store, migrated and with its default application."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from otp.store import Store
    from otp.store.applications import ensure_default_application

    settings = get_settings()
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)

    async def run() -> T:
        store = Store(settings.store_url)
        try:
            await store.migrate()
            await ensure_default_application(store)
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except (SQLAlchemyError, OSError) as exc:
        where = make_url(settings.store_url).render_as_string(hide_password=True)
        fail(f"the store at {where} failed: {type(exc).__name__}: {getattr(exc, 'orig', exc)}")


def in_store_or_fail(work: Callable[[Store], Awaitable[T]]) -> T:
    """`in_store(work)`, where an API problem (404, 422) ends the command with exit 2 and
    its detail and each field error on stderr."""
    from api.problems import ApiProblem

    async def guarded(store: Store) -> T:
        try:
            return await work(store)
        except ApiProblem as problem:
            lines = [problem.detail or problem.title]
            lines += [
                f"  {e.get('pointer') or e.get('parameter', '')}: {e.get('detail', '')}"
                for e in problem.extensions.get("errors", [])
            ]
            fail("\n".join(lines), 2)

    return in_store(guarded)


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


def table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
