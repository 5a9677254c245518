"""Sandbox scenarios of each application: add, list, remove (see `otp.sandbox.scenarios`)."""

from __future__ import annotations

import re

from sqlmodel import col, select

from otp.domain.ids import random_id
from otp.sandbox.scenarios import Scenario, ScenarioKind
from otp.store import Store
from otp.store.tables import SandboxScenarioRow

SCENARIO_ID_PREFIX = "sbs_"
SCENARIO_ID_RE = re.compile(r"^sbs_[a-z2-7]{24}$")
MAX_PER_APPLICATION = 200


def new_scenario_id() -> str:
    """`sbs_` + 24 random base32 characters (120 bits)."""
    return random_id(SCENARIO_ID_PREFIX, random_bytes=15)


def as_scenario(row: SandboxScenarioRow) -> Scenario:
    return Scenario(
        id=row.id,
        kind=ScenarioKind(row.kind),
        to_hash=row.to_hash,
        country=row.country,
        prefix=row.prefix,
        channel=row.channel,
        error_code=row.error_code,
        delay_s=row.delay_s,
        status_code=row.status_code,
        created_at=row.created_at,
    )


async def create_scenario(
    store: Store,
    *,
    application_id: str,
    kind: ScenarioKind,
    to_hash: str | None = None,
    to_masked: str | None = None,
    country: str | None = None,
    prefix: str | None = None,
    channel: str | None = None,
    error_code: str | None = None,
    delay_s: int | None = None,
    status_code: int | None = None,
    note: str = "",
) -> SandboxScenarioRow:
    """A new scenario, in force at once (within the caches' few seconds elsewhere)."""
    row = SandboxScenarioRow(
        id=new_scenario_id(),
        application_id=application_id,
        kind=ScenarioKind(kind).value,
        to_hash=to_hash,
        to_masked=to_masked,
        country=country,
        prefix=prefix,
        channel=channel,
        error_code=error_code,
        delay_s=delay_s,
        status_code=status_code,
        note=note[:200],
    )
    async with store.write_guard(), store.session() as session:
        session.add(row)
        await session.commit()
        await session.refresh(row)
    return row


async def list_scenarios(store: Store, *, application_id: str) -> list[SandboxScenarioRow]:
    """The application's scenarios, newest first."""
    query = (
        select(SandboxScenarioRow)
        .where(SandboxScenarioRow.application_id == application_id)
        .order_by(col(SandboxScenarioRow.created_at).desc(), col(SandboxScenarioRow.id).desc())
        .limit(MAX_PER_APPLICATION)
    )
    async with store.session() as session:
        return list((await session.exec(query)).all())


async def delete_scenario(
    store: Store, *, application_id: str, scenario_id: str
) -> SandboxScenarioRow | None:
    """Remove one scenario; the row removed, or None when there is none (for this app)."""
    async with store.write_guard(), store.session() as session:
        query = select(SandboxScenarioRow).where(
            SandboxScenarioRow.id == scenario_id,
            SandboxScenarioRow.application_id == application_id,
        )
        row = (await session.exec(query)).first()
        if row is None:
            return None
        await session.delete(row)
        await session.commit()
        return row
