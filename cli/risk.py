"""`otp risk lockouts`, `otp risk unlock` and `otp risk safe-list add|list|remove`.

The same store functions as the admin API; destinations are given in clear on the command
line and printed masked. Run where the API's settings are (the code secret keys the
destination hashes, the limiter holds the failed-check counters).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.common import AppOption, JsonOption, KeyMode, fail, in_store, print_json, table, when
from otp.settings import get_settings

if TYPE_CHECKING:
    from otp.store import Store

safe_list_app = typer.Typer(
    help="The safe list: destinations exempt from velocity limits and conversion blocks.",
    no_args_is_help=True,
)


def _destination(to: str) -> str:
    from otp.domain.destinations import InvalidDestinationError, parse_any

    try:
        return parse_any(to).value
    except InvalidDestinationError as exc:
        fail(f"invalid --to: {exc}", 2)


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

    rows = in_store(work)
    if rows is None:
        fail(f"no application {application_id!r}")
    if as_json:
        print_json([_lockout_json(r) for r in rows])
    elif rows:
        lines = [["ID", "MODE", "TO", "CHANNEL", "FAILED", "SINCE", "UNTIL"]]
        for r in rows:
            lines.append(
                [
                    r.id,
                    r.mode,
                    r.to_masked,
                    r.channel or "-",
                    str(r.failed_count),
                    when(r.since),
                    when(r.until),
                ]
            )
        table(lines)
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

    lifted = in_store(work)
    if lifted is None:
        fail(f"no application {application_id!r}")
    if not lifted:
        fail(f"{mask(normalized)} is not locked out for {application_id}")
    if as_json:
        print_json(
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
        fail(f"--note takes at most {NOTE_MAX} characters", 2)
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

    entry = in_store(work)
    if entry is None:
        fail(f"no application {application_id!r}")
    if as_json:
        print_json(_entry_json(entry))
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

    entries = in_store(
        lambda store: list_entries(
            store,
            application_id=application_id,
            mode=mode.value if mode else None,
            include_removed=include_removed,
            limit=100_000,
        )
    )
    if as_json:
        print_json([_entry_json(e) for e in entries])
    elif entries:
        lines = [["ID", "MODE", "TO", "ADDED", "BY", "REMOVED", "BY", "NOTE"]]
        for e in entries:
            lines.append(
                [
                    e.id,
                    e.mode,
                    e.to_masked,
                    when(e.added_at),
                    e.added_by,
                    when(e.removed_at),
                    e.removed_by or "-",
                    e.note or "-",
                ]
            )
        table(lines)
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

    entry = in_store(
        lambda store: remove_entry(
            store, entry_id=entry_id, application_id=application_id, removed_by=by
        )
    )
    if entry is None:
        fail(f"no safe list entry {entry_id!r} for {application_id}")
    if as_json:
        print_json(_entry_json(entry))
    else:
        typer.echo(f"Removed {entry.id} ({entry.to_masked}) at {when(entry.removed_at)}.")
