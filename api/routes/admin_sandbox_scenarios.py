"""/v1/admin/applications/{id}/sandbox-scenarios: failures test mode simulates.

Same admin token as the rest of /v1/admin (`require_admin`). Scenarios act on test-mode
verifications and webhooks of the application only; see docs/concepts/sandbox-scenarios.md.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, status

from api.deps import SecretsDep, StoreDep, require_admin
from api.routes.admin import ApplicationId, admin_responses
from api.schemas.sandbox_scenarios import (
    SandboxScenarioCreate,
    SandboxScenarioList,
    SandboxScenarioPublic,
)
from api.services import sandbox_scenarios as scenarios

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])

ScenarioId = Annotated[str, Path(description="`sbs_...`.")]


@router.get(
    "/applications/{application_id}/sandbox-scenarios",
    response_model=SandboxScenarioList,
    summary="List the application's sandbox scenarios",
    responses=admin_responses(401, 404, 422),
)
async def list_sandbox_scenarios_route(
    application_id: ApplicationId, store: StoreDep
) -> SandboxScenarioList:
    rows = await scenarios.list_scenarios(store, application_id=application_id)
    return SandboxScenarioList(scenarios=[SandboxScenarioPublic.of(r) for r in rows])


@router.post(
    "/applications/{application_id}/sandbox-scenarios",
    status_code=status.HTTP_201_CREATED,
    response_model=SandboxScenarioPublic,
    summary="Add a sandbox scenario",
    responses=admin_responses(401, 404, 422),
)
async def create_sandbox_scenario_route(
    application_id: ApplicationId,
    body: SandboxScenarioCreate,
    store: StoreDep,
    secrets: SecretsDep,
) -> SandboxScenarioPublic:
    """In force for new test-mode sends within 5 s (the workers' cache); it comes before
    the magic numbers for the destinations it matches."""
    row = await scenarios.create_scenario(
        store, application_id=application_id, body=body, secret=secrets.code_secret
    )
    return SandboxScenarioPublic.of(row)


@router.delete(
    "/applications/{application_id}/sandbox-scenarios/{scenario_id}",
    response_model=SandboxScenarioPublic,
    summary="Remove a sandbox scenario",
    responses=admin_responses(401, 404, 422),
)
async def delete_sandbox_scenario_route(
    application_id: ApplicationId, scenario_id: ScenarioId, store: StoreDep
) -> SandboxScenarioPublic:
    row = await scenarios.delete_scenario(
        store, application_id=application_id, scenario_id=scenario_id
    )
    return SandboxScenarioPublic.of(row)
