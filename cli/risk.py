"""`otp risk lockouts`, `otp risk unlock` and `otp risk safe-list add|list|remove`.

The same store functions as the admin API; destinations are given in clear on the command
line and printed masked. Run where the API's settings are (the code secret keys the
destination hashes, the limiter holds the failed-check counters).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from otp.settings import get_settings

if TYPE_CHECKING:
    from otp.store import Store

safe_list_app = typer.Typer(
    help="The safe list: destinations exempt from velocity limits and conversion blocks.",
    no_args_is_help=True,
)

AppOption = Annotated[str, typer.Option("--app", help="The application's id.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
T = TypeVar("T")


class KeyMode(StrEnum):
    TEST = "test"
    LIVE = "live"


# The shared helpers of `cli.main`, imported when a command runs (`cli.main` imports this
# module to register the commands).
def _in_store(work: Callable[[Store], Awaitable[T]]) -> T:
    from cli.main import _in_store as in_store

    return in_store(work)


def _fail(message: str, code: int = 1) -> NoReturn:
    from cli.main import _fail as fail

    fail(message, code)


def _print_json(value: Any) -> None:
    from cli.main import _print_json as print_json

    print_json(value)


def _table(rows: list[list[str]]) -> None:
    from cli.main import _table as table

    table(rows)


def _when(value: datetime | None) -> str:
    from cli.main import _when as when

    return when(value)


def _destination(to: str) -> str:
    from otp.domain import Channel
    from otp.domain.destinations import InvalidDestinationError, looks_like_email, parse_destination

    channel = Channel.EMAIL if looks_like_email(to) else Channel.SMS
    try:
        return parse_destination(to, channel).value
    except InvalidDestinationError as exc:
        _fail(f"invalid --to: {exc}", 2)


def _hash(to: str) -> str:
    from otp.settings import load_secrets
    from otp.store.events import destination_hash

    return destination_hash(load_secrets(get_settings()).code_secret, to)


async def _risk(store: Store, application_id: str) -> Any:
    from otp.store.applications import get_application

    application = await get_application(store, application_id=application_id)
    return None if application is None else application.risk


def lockouts(
    application_id: AppOption,
    mode: Annotated[KeyMode | None, typer.Option(help="Only this mode's lockouts.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List the destinations locked out after too many wrong codes (masked)."""
    from api.services import lockouts as service
    from otp.domain import Mode
    from otp.risk.limits.factory import build_limiter

    async def work(store: Store) -> Any:
        risk = await _risk(store, application_id)
        if risk is None:
            return None
        limiter = build_limiter(get_settings(), store)
        try:
            found: list[Any] = []
            after: str | None = None
            while True:
                page, after = await service.active_lockouts(
                    store,
                    limiter,
                    risk,
                    application_id=application_id,
                    mode=Mode(mode.value) if mode else None,
                    limit=500,
                    after=after,
                )
                found += page
                if after is None:
                    return found
        finally:
            await limiter.close()

    rows = _in_store(work)
    if rows is None:
        _fail(f"no application {application_id!r}")
    if as_json:
        _print_json([_lockout_json(r) for r in rows])
    elif rows:
        table = [["ID", "MODE", "TO", "CHANNEL", "FAILED", "SINCE", "UNTIL"]]
        for r in rows:
            table.append(
                [
                    r.id,
                    r.mode,
                    r.to_masked,
                    r.channel or "-",
                    str(r.failed_count),
                    _when(r.since),
                    _when(r.until),
                ]
            )
        _table(table)
    else:
        typer.echo(f"No lockouts for {application_id}.")


def unlock(
    application_id: AppOption,
    to: Annotated[str, typer.Option(help="The locked destination: E.164 number or email.")],
    mode: Annotated[KeyMode | None, typer.Option(help="Only this mode (default: both).")] = None,
    by: Annotated[str, typer.Option(help="Who unlocks it, for the record.")] = "cli",
    as_json: JsonOption = False,
) -> None:
    """Forget the destination's failed checks and end its lockout now."""
    from api.services import lockouts as service
    from otp.domain import Mode
    from otp.domain.destinations import mask
    from otp.risk.limits.factory import build_limiter

    normalized = _destination(to)
    dst_hash = _hash(normalized)
    modes = [Mode(mode.value)] if mode else [Mode.TEST, Mode.LIVE]

    async def work(store: Store) -> Any:
        risk = await _risk(store, application_id)
        if risk is None:
            return None
        limiter = build_limiter(get_settings(), store)
        try:
            return await service.unlock(
                store,
                limiter,
                risk,
                application_id=application_id,
                destination_hash=dst_hash,
                modes=modes,
                lifted_by=by,
            )
        finally:
            await limiter.close()

    lifted = _in_store(work)
    if lifted is None:
        _fail(f"no application {application_id!r}")
    if not lifted:
        _fail(f"{mask(normalized)} is not locked out for {application_id}")
    if as_json:
        _print_json(
            [
                {
                    "mode": item.mode.value,
                    "id": item.lockout.id if item.lockout else None,
                    "to": mask(normalized),
                    "failed_count": item.failed_count,
                }
                for item in lifted
            ]
        )
    else:
        modes_text = ", ".join(item.mode.value for item in lifted)
        typer.echo(f"Unlocked {mask(normalized)} for {application_id} ({modes_text}).")


def _lockout_json(lockout: Any) -> dict[str, Any]:
    data: dict[str, Any] = lockout.model_dump(mode="json", exclude={"destination_hash"})
    data["to"] = data.pop("to_masked")
    return data


def _entry_json(entry: Any) -> dict[str, Any]:
    data: dict[str, Any] = entry.model_dump(mode="json", exclude={"destination_hash"})
    data["to"] = data.pop("to_masked")
    data["active"] = entry.removed_at is None
    return data


@safe_list_app.command("add")
def safe_list_add(
    application_id: AppOption,
    to: Annotated[str, typer.Option(help="E.164 number or email address.")],
    mode: Annotated[KeyMode, typer.Option(help="The mode it is safe in.")],
    note: Annotated[str, typer.Option(help="Why, for the record.")] = "",
    by: Annotated[str, typer.Option(help="Who adds it, for the record.")] = "cli",
    as_json: JsonOption = False,
) -> None:
    """Exempt a destination from velocity limits and conversion blocks (API processes and
    workers see it within 5 s)."""
    from otp.domain.destinations import mask
    from otp.store.safe_list import NOTE_MAX, add_entry

    if len(note) > NOTE_MAX:
        _fail(f"--note takes at most {NOTE_MAX} characters", 2)
    normalized = _destination(to)
    dst_hash = _hash(normalized)

    async def work(store: Store) -> Any:
        if await _risk(store, application_id) is None:
            return None
        entry, _added = await add_entry(
            store,
            application_id=application_id,
            mode=mode.value,
            destination_hash=dst_hash,
            to_masked=mask(normalized),
            note=note.strip(),
            added_by=by,
        )
        return entry

    entry = _in_store(work)
    if entry is None:
        _fail(f"no application {application_id!r}")
    if as_json:
        _print_json(_entry_json(entry))
    else:
        typer.echo(f"Safe-listed {entry.to_masked} for {application_id} ({entry.mode}): {entry.id}")


@safe_list_app.command("list")
def safe_list_list(
    application_id: AppOption,
    mode: Annotated[KeyMode | None, typer.Option(help="Only this mode's entries.")] = None,
    include_removed: Annotated[
        bool, typer.Option("--all", help="Also removed entries (the audit trail).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """List the safe list (masked), with who added and removed each entry."""
    from otp.store.safe_list import list_entries

    entries = _in_store(
        lambda store: list_entries(
            store,
            application_id=application_id,
            mode=mode.value if mode else None,
            include_removed=include_removed,
            limit=100_000,
        )
    )
    if as_json:
        _print_json([_entry_json(e) for e in entries])
    elif entries:
        table = [["ID", "MODE", "TO", "ADDED", "BY", "REMOVED", "BY", "NOTE"]]
        for e in entries:
            table.append(
                [
                    e.id,
                    e.mode,
                    e.to_masked,
                    _when(e.added_at),
                    e.added_by,
                    _when(e.removed_at),
                    e.removed_by or "-",
                    e.note or "-",
                ]
            )
        _table(table)
    else:
        typer.echo(f"No safe list entries for {application_id}.")


@safe_list_app.command("remove")
def safe_list_remove(
    entry_id: Annotated[str, typer.Argument(help="`sfl_...` (see `otp risk safe-list list`).")],
    application_id: AppOption,
    by: Annotated[str, typer.Option(help="Who removes it, for the record.")] = "cli",
    as_json: JsonOption = False,
) -> None:
    """Take a destination off the safe list (the entry stays in the audit trail)."""
    from otp.store.safe_list import remove_entry

    entry = _in_store(
        lambda store: remove_entry(
            store, entry_id=entry_id, application_id=application_id, removed_by=by
        )
    )
    if entry is None:
        _fail(f"no safe list entry {entry_id!r} for {application_id}")
    if as_json:
        _print_json(_entry_json(entry))
    else:
        typer.echo(f"Removed {entry.id} ({entry.to_masked}) at {_when(entry.removed_at)}.")
