"""`otp console add-user NAME --role admin|support`: a web console user.

The password is generated and printed once, or read from stdin with `--password-stdin`
(one line). Only its argon2 hash is stored.
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.common import fail, in_store

if TYPE_CHECKING:
    from otp.settings import Settings
    from otp.store import Store

console_app = typer.Typer(help="Users of the web console (/console/).", no_args_is_help=True)


class Role(StrEnum):
    ADMIN = "admin"
    SUPPORT = "support"


@console_app.command("add-user")
def add_user(
    username: Annotated[str, typer.Argument(help="The user name (lower-cased).")],
    role: Annotated[Role, typer.Option("--role", help="admin: everything; support: read-only.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
) -> None:
    """Add a console user; prints the generated password unless one comes on stdin."""
    from api.console.services import auth
    from otp.store.console import UserExistsError

    password = sys.stdin.readline().rstrip("\n") if password_stdin else auth.generate_password()
    if len(password) < 12:
        fail("the password must be at least 12 characters", 2)

    async def work(store: Store) -> str | None:
        try:
            await auth.add_user(store, username=username, role=role.value, password=password)
        except UserExistsError:
            return f"a console user named {username.lower()} exists already"
        except ValueError as exc:
            return str(exc)
        return None

    problem = in_store(work)
    if problem:
        fail(problem, 2)
    typer.echo(f"Console user {username.lower()} ({role.value}) added.")
    if not password_stdin:
        typer.echo(f"Password: {password}")


DEV_ADMIN = "admin"
DEV_PASSWORD_FILE = "console_admin_password"  # noqa: S105 (a file name)


def ensure_dev_admin(settings: Settings) -> tuple[str, Path]:
    """In dev, the console's first admin: created with a generated password (stored 0600 in
    the data dir) when the store has no console user yet. The user name and the file."""
    import asyncio

    from api.console.services import auth
    from otp.store import Store
    from otp.store.console import count_users

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / DEV_PASSWORD_FILE

    async def work() -> None:
        store = Store(settings.store_url)
        try:
            await store.migrate()
            if await count_users(store):
                return
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(auth.generate_password())
            password = path.read_text().strip()
            await auth.add_user(store, username=DEV_ADMIN, role="admin", password=password)
        finally:
            await store.close()

    asyncio.run(work())
    return DEV_ADMIN, path
