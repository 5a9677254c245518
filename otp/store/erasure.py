"""What the store holds about one destination, table by table: found, exported, erased.

The store keeps no clear destination but the sandbox inbox (test mode, by design): a
destination is found by its keyed hash (`otp.store.events.destination_hash`) in the
verifications' destination rows and the event log, scoped to one application and its
modes; from there by verification id (events, sandbox messages, webhook messages) and by
webhook message (attempts). `TARGETS` lists, per table, which rows belong to the subject
and whether erasing deletes them or anonymises them; a table added later is one line.

Analytics stay correct: a verification row is not deleted but anonymised (mask, client
reference, range hash and snapshot cleared), so counts by day, channel, country and
status are unchanged, while nothing left can be reached from the destination: its
destination-hash rows and events are deleted, and the row no longer names it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, false, or_, update
from sqlmodel import SQLModel, col, select

from otp.store import Store
from otp.store.tables import (
    Counter,
    Lockout,
    RateHit,
    SafeListEntry,
    SandboxMessage,
    VerificationDestination,
    VerificationEvent,
    VerificationRecord,
    WebhookAttempt,
    WebhookMessage,
)


@dataclass(frozen=True)
class Subject:
    """One destination of one application, in some modes, and what was found of it."""

    application_id: str
    modes: tuple[str, ...]
    destination: str  # normalised (E.164 or email): matched against the sandbox inbox only
    destination_hash: str
    verification_ids: tuple[str, ...] = ()
    webhook_message_ids: tuple[str, ...] = ()


Where = Callable[[Subject], ColumnElement[bool]]


@dataclass(frozen=True)
class Target:
    """The rows of one table that belong to a subject; erased by deleting them, or by
    setting `anonymise`'s columns (rows that analytics count)."""

    table: type[SQLModel]
    where: Where
    anonymise: Mapping[str, Any] | None = None

    @property
    def name(self) -> str:
        return str(self.table.__tablename__)


def _in(column: Any, values: Sequence[str]) -> ColumnElement[bool]:
    return col(column).in_(values) if values else false()


def _scoped(table: Any, s: Subject) -> list[ColumnElement[bool]]:
    """The application (and mode) conditions a table can express."""
    found: list[ColumnElement[bool]] = []
    if hasattr(table, "application_id"):
        found.append(col(table.application_id) == s.application_id)
    if hasattr(table, "mode"):
        found.append(col(table.mode).in_(s.modes))
    return found


def by_destination_hash(table: Any, column: str = "destination_hash") -> Where:
    """Rows holding the subject's destination hash (in its application and modes, where
    the table has those columns): the one-line target of a table keyed by the hash."""
    return lambda s: and_(col(getattr(table, column)) == s.destination_hash, *_scoped(table, s))


def by_verification(table: Any, column: str = "verification_id") -> Where:
    """Rows of the subject's verifications."""
    return lambda s: and_(_in(getattr(table, column), s.verification_ids), *_scoped(table, s))


def _limiter_keys(table: Any) -> Where:
    """Limiter rows keyed by the destination hash (`<app>:<mode>:<kind>:<hash>`)."""
    return lambda s: or_(
        *(
            col(table.key).like(f"{s.application_id}:{mode}:%:{s.destination_hash}")
            for mode in s.modes
        )
    )


def _sandbox(s: Subject) -> ColumnElement[bool]:
    """The inbox's messages of the subject's verifications (`find` adds those found by
    the clear destination, mode checked through their verification row)."""
    return and_(
        col(SandboxMessage.application_id) == s.application_id,
        _in(SandboxMessage.verification_id, s.verification_ids),
    )


def _events(s: Subject) -> ColumnElement[bool]:
    return or_(by_verification(VerificationEvent)(s), by_destination_hash(VerificationEvent)(s))


TARGETS: list[Target] = [
    Target(
        VerificationRecord,
        lambda s: and_(_in(VerificationRecord.id, s.verification_ids)),
        anonymise={"to_masked": "", "client_ref": None, "prefix_hash": None, "snapshot": {}},
    ),
    Target(VerificationDestination, by_verification(VerificationDestination)),
    Target(VerificationEvent, _events),
    Target(SandboxMessage, _sandbox),
    Target(WebhookMessage, by_verification(WebhookMessage)),
    Target(WebhookAttempt, lambda s: _in(WebhookAttempt.message_id, s.webhook_message_ids)),
    Target(RateHit, _limiter_keys(RateHit)),
    Target(Counter, _limiter_keys(Counter)),
    Target(Lockout, by_destination_hash(Lockout)),
    Target(SafeListEntry, by_destination_hash(SafeListEntry)),
]


async def find(store: Store, subject: Subject) -> Subject:
    """The subject with its verification ids and webhook messages filled in."""
    records = select(VerificationDestination.verification_id).join(
        VerificationRecord,
        col(VerificationRecord.id) == col(VerificationDestination.verification_id),
    )
    records = records.where(
        col(VerificationDestination.destination_hash) == subject.destination_hash,
        col(VerificationRecord.application_id) == subject.application_id,
        col(VerificationRecord.mode).in_(subject.modes),
    )
    events = select(VerificationEvent.verification_id).where(
        by_destination_hash(VerificationEvent)(subject)
    )
    ids: set[str] = set()
    async with store.session() as session:
        ids.update((await session.exec(records)).all())
        ids.update((await session.exec(events)).all())
        if "test" in subject.modes:
            # The inbox has no mode: a message counts in the modes of its verification
            # row, or in test mode when it has none (yet).
            inbox = (
                select(SandboxMessage.verification_id)
                .join(
                    VerificationRecord,
                    col(VerificationRecord.id) == col(SandboxMessage.verification_id),
                    isouter=True,
                )
                .where(
                    col(SandboxMessage.application_id) == subject.application_id,
                    col(SandboxMessage.to) == subject.destination,
                    or_(
                        col(VerificationRecord.id).is_(None),
                        col(VerificationRecord.mode).in_(subject.modes),
                    ),
                )
            )
            ids.update((await session.exec(inbox)).all())
        found = Subject(**{**subject.__dict__, "verification_ids": tuple(sorted(ids))})
        messages = select(WebhookMessage.message_id).where(by_verification(WebhookMessage)(found))
        message_ids = sorted(set((await session.exec(messages)).all()))
    return Subject(**{**found.__dict__, "webhook_message_ids": tuple(message_ids)})


@dataclass
class Found:
    """Rows per table (as JSON-ready dicts) and their counts."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        return {name: len(rows) for name, rows in self.rows.items()}


async def export(store: Store, subject: Subject, targets: Sequence[Target] = ()) -> Found:
    """Every row of every target that belongs to the subject."""
    found = Found()
    async with store.session() as session:
        for target in targets or TARGETS:
            rows = (await session.exec(select(target.table).where(target.where(subject)))).all()
            found.rows[target.name] = [row.model_dump(mode="json") for row in rows]
    return found


async def erase(store: Store, subject: Subject, targets: Sequence[Target] = ()) -> dict[str, int]:
    """Delete (or anonymise) every target's rows of the subject in one transaction;
    the number of rows per table."""
    counts: dict[str, int] = {}
    async with store.write_guard(), store.session() as session:
        for target in targets or TARGETS:
            table: Any = target.table
            statement: Any = (
                delete(table).where(target.where(subject))
                if target.anonymise is None
                else update(table).where(target.where(subject)).values(**target.anonymise)
            )
            result: Any = await session.exec(statement)
            counts[target.name] = int(result.rowcount or 0)
        await session.commit()
    return counts
