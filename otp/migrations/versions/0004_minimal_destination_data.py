"""Minimal destination data: number ranges only as keyed hashes, masks down to the
country code and last 2 digits.

- `verifications.prefix` (the clear number range) is replaced by `prefix_hash`, its keyed
  hash. The key is the server's code secret, which migrations do not hold: existing rows
  get NULL, so verifications made before the upgrade no longer count in conversion
  monitoring (its window is at most 7 days, so the effect ends by then).
- `risk_blocks.value_hash`: the keyed hash automatic prefix blocks match on. Existing
  automatic prefix blocks cannot get one: they are lifted (`lifted_by` "migration 0004")
  and their value cut to the short range (`otp.domain.destinations.short_range`). Operator
  blocks are unchanged.
- Masks made before (`+1415*****23`) are rewritten to the new form (`+1********23`) in
  `verifications.to_masked`, `verifications.snapshot` and `verification_events.to_masked`.
- Limiter hits and counters keyed by a clear range (`...:pfx:+...`) are deleted: those
  limits start counting afresh under hashed keys (Redis keys of that form expire with
  their window).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 19:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import phonenumbers
import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _calling_code(digits: str) -> str:
    for n in (1, 2, 3):
        if digits[:n].isdigit() and int(digits[:n]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return digits[:n]
    return ""


def remask(old: str | None) -> str | None:
    """`+1415*****23` → `+1********23`; anything else (email, new form) unchanged."""
    if not old or not old.startswith("+") or "@" in old or not old[1:5].isdigit():
        return old
    if not old[-2:].isdigit() or len(old) < 8:
        return old
    code = _calling_code(old[1:5])
    return f"+{code}" + "*" * (len(old) - 1 - len(code) - 2) + old[-2:]


def _short(prefix: str) -> str:
    from otp.domain.destinations import short_range

    return short_range(prefix + "0000") or "+" + _calling_code(prefix[1:])


def _rewrite_masks() -> None:
    bind = op.get_bind()
    records = sa.table(
        "verifications",
        sa.column("id", sa.String),
        sa.column("to_masked", sa.String),
        sa.column("snapshot", sa.JSON),
    )
    query = sa.select(records.c.id, records.c.to_masked, records.c.snapshot)
    for row in bind.execute(query).all():
        snapshot: Any = row.snapshot
        if isinstance(snapshot, dict):
            for step in snapshot.get("channels", []) or []:
                if isinstance(step, dict) and isinstance(step.get("to"), str):
                    step["to"] = remask(step["to"])
        bind.execute(
            records.update()
            .where(records.c.id == row.id)
            .values(to_masked=remask(row.to_masked), snapshot=snapshot)
        )
    events = sa.table(
        "verification_events", sa.column("id", sa.Integer), sa.column("to_masked", sa.String)
    )
    query = sa.select(events.c.id, events.c.to_masked).where(events.c.to_masked.like("+%"))
    for event in bind.execute(query).all():
        bind.execute(
            events.update().where(events.c.id == event.id).values(to_masked=remask(event.to_masked))
        )


def _retire_automatic_prefix_blocks() -> None:
    bind = op.get_bind()
    blocks = sa.table(
        "risk_blocks",
        sa.column("id", sa.String),
        sa.column("scope", sa.String),
        sa.column("value", sa.String),
        sa.column("automatic", sa.Boolean),
        sa.column("lifted_at", UTCDateTime()),
        sa.column("lifted_by", sa.String),
    )
    query = sa.select(blocks.c.id, blocks.c.value, blocks.c.lifted_at).where(
        blocks.c.scope == "prefix", blocks.c.automatic.is_(True)
    )
    now = datetime.now(UTC)
    for row in bind.execute(query).all():
        values: dict[str, Any] = {"value": _short(row.value)}
        if row.lifted_at is None:
            values.update(lifted_at=now, lifted_by="migration 0004")
        bind.execute(blocks.update().where(blocks.c.id == row.id).values(**values))


def upgrade() -> None:
    with op.batch_alter_table("verifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prefix_hash", AutoString(length=64), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_verifications_prefix_hash"), ["prefix_hash"], unique=False
        )
        batch_op.drop_index(batch_op.f("ix_verifications_prefix"))
        batch_op.drop_column("prefix")

    with op.batch_alter_table("risk_blocks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("value_hash", AutoString(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_risk_blocks_value_hash"), ["value_hash"], unique=False)

    _rewrite_masks()
    _retire_automatic_prefix_blocks()
    op.execute(sa.text("DELETE FROM rate_hits WHERE key LIKE '%:pfx:+%'"))
    op.execute(sa.text("DELETE FROM counters WHERE key LIKE '%:pfx:+%'"))


def downgrade() -> None:
    # The clear ranges are gone: the restored column stays empty.
    with op.batch_alter_table("risk_blocks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_risk_blocks_value_hash"))
        batch_op.drop_column("value_hash")

    with op.batch_alter_table("verifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prefix", AutoString(length=16), nullable=True))
        batch_op.create_index(batch_op.f("ix_verifications_prefix"), ["prefix"], unique=False)
        batch_op.drop_index(batch_op.f("ix_verifications_prefix_hash"))
        batch_op.drop_column("prefix_hash")
