"""Alembic migrations of the store, runnable from code (`Store.migrate`) or `otp db upgrade`.

Revisions live in `versions/`; write one for every change to `otp.store.tables`
(`otp db revision -m "..."` autogenerates a draft to review). The same revisions run
on SQLite and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

_HERE = Path(__file__).resolve().parent
# Any constant: the key of the PostgreSQL advisory lock that serialises migrators.
_ADVISORY_LOCK_KEY = 748_201_113


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_HERE))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade_head(connection: Connection) -> None:
    """Upgrade to the latest revision on an open (sync) connection, inside its transaction."""
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"SELECT pg_advisory_xact_lock({_ADVISORY_LOCK_KEY})"))
    command.upgrade(alembic_config(connection), "head")


def current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()
