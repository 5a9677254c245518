"""Sandbox scenarios through the admin API, and the fraud-control one at create.

Scenarios act in test mode only. The worker reads them for deliveries and webhooks
(`activities.sandbox_scenarios`); a create with a test key reads them here, cached per
application for `CACHE_TTL_S` seconds (a change through this process clears its cache;
other processes see it within the bound). A `fraud_block` match refuses the create with
the same `risk-policy` problem a risk block gives.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from cachetools import TTLCache

from api.problems import RiskPolicyRefused, SandboxScenarioNotFound, field_error, invalid
from api.schemas.sandbox_scenarios import SandboxScenarioCreate
from api.services.applications import application_id_of, require_application
from otp.domain import ChannelStep, Mode
from otp.domain.destinations import InvalidDestinationError, mask, parse_any, parse_phone
from otp.risk.policy import RefusalReason
from otp.sandbox.scenarios import Scenario, ScenarioKind, check, match
from otp.store import Store
from otp.store import sandbox_scenarios as db
from otp.store.events import destination_hash
from otp.store.tables import SandboxScenarioRow

logger = logging.getLogger("otp.api")

CACHE_TTL_S = 5.0
# By store and application: one process may serve several stores (tests, tools).
_cache: TTLCache[tuple[str, str], tuple[Scenario, ...]] = TTLCache(maxsize=4096, ttl=CACHE_TTL_S)


def _key(store: Store, application_id: str) -> tuple[str, str]:
    return (str(store.url), application_id)


async def list_scenarios(store: Store, *, application_id: str) -> list[SandboxScenarioRow]:
    await require_application(store, application_id)
    return await db.list_scenarios(store, application_id=application_id)


async def create_scenario(
    store: Store, *, application_id: str, body: SandboxScenarioCreate, secret: bytes
) -> SandboxScenarioRow:
    """Validate and add a scenario; a 422 problem (nothing stored) when it cannot apply."""
    await require_application(store, application_id)
    to = body.to
    errors = []
    if to is not None:
        try:
            to = parse_any(to).value
        except InvalidDestinationError as exc:
            errors.append(field_error("#/to", str(exc), "invalid_destination"))
    errors += [
        field_error(f"#/{name}", detail)
        for name, detail in check(
            body.kind,
            to=to,
            country=body.country,
            prefix=body.prefix,
            error_code=body.error_code,
            delay_s=body.delay_s,
            status_code=body.status_code,
        )
    ]
    if not errors and len(await db.list_scenarios(store, application_id=application_id)) >= (
        db.MAX_PER_APPLICATION
    ):
        errors.append(field_error("#/kind", f"at most {db.MAX_PER_APPLICATION} scenarios"))
    if errors:
        raise invalid(errors)
    row = await db.create_scenario(
        store,
        application_id=application_id,
        kind=body.kind,
        to_hash=destination_hash(secret, to) if to is not None else None,
        to_masked=mask(to) if to is not None else None,
        country=body.country,
        prefix=body.prefix,
        channel=body.channel.value if body.channel else None,
        error_code=body.error_code,
        delay_s=body.delay_s,
        status_code=body.status_code,
        note=body.note,
    )
    _cache.pop(_key(store, application_id), None)
    logger.info(
        "sandbox scenario created",
        extra={"application_id": application_id, "scenario": row.id, "kind": row.kind},
    )
    return row


async def delete_scenario(
    store: Store, *, application_id: str, scenario_id: str
) -> SandboxScenarioRow:
    if not db.SCENARIO_ID_RE.match(scenario_id):
        raise SandboxScenarioNotFound()
    row = await db.delete_scenario(
        store, application_id=application_id_of(application_id), scenario_id=scenario_id
    )
    if row is None:
        raise SandboxScenarioNotFound()
    _cache.pop(_key(store, application_id), None)
    logger.info(
        "sandbox scenario removed",
        extra={"application_id": application_id, "scenario": row.id, "kind": row.kind},
    )
    return row


async def refuse_fraud_blocked(
    store: Store, *, application_id: str, mode: Mode, steps: Sequence[ChannelStep], secret: bytes
) -> None:
    """Test mode: refuse the create as a risk block would when a `fraud_block` scenario
    matches one of its steps (the first such step is named, never the destination)."""
    if mode is not Mode.TEST:
        return
    key = _key(store, application_id)
    scenarios = _cache.get(key)
    if scenarios is None:
        rows = await db.list_scenarios(store, application_id=application_id)
        scenarios = _cache[key] = tuple(db.as_scenario(r) for r in rows)
    if not any(s.kind is ScenarioKind.FRAUD_BLOCK for s in scenarios):
        return
    for index, step in enumerate(steps):
        country = parse_phone(step.to).country if step.channel.is_phone else None
        found = match(
            scenarios,
            to=step.to,
            to_hash=destination_hash(secret, step.to),
            country=country,
            channel=step.channel.value,
            kinds=frozenset({ScenarioKind.FRAUD_BLOCK}),
        )
        if found is not None:
            logger.info(
                "create refused by a sandbox scenario",
                extra={"step_index": index, "scenario": found.id},
            )
            raise RiskPolicyRefused(RefusalReason.SCOPE_BLOCKED.value, step_index=index)
