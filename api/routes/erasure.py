"""/v1/admin/applications/{id}/destinations: export and erase what is held about one
destination (admin token, like every admin route). The logic lives in `api.services.erasure`."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from api.deps import ClientDep, LimiterDep, SecretsDep, StoreDep, require_admin
from api.routes.admin import ApplicationId, admin_responses
from api.schemas.erasure import DestinationReport, DestinationRequest
from api.services import erasure

router = APIRouter(
    prefix="/v1/admin/applications/{application_id}/destinations",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
)


@router.post(
    "/export",
    response_model=DestinationReport,
    summary="Export everything held about one destination",
    responses=admin_responses(401, 404, 422),
)
async def export_route(
    application_id: ApplicationId,
    body: DestinationRequest,
    store: StoreDep,
    secrets: SecretsDep,
    client: ClientDep,
) -> DestinationReport:
    """The store's rows and the Temporal executions of the destination's verifications."""
    report = await erasure.export_request(
        store, client, secret=secrets.code_secret, application_id=application_id, body=body
    )
    return DestinationReport.model_validate(report, from_attributes=True)


@router.post(
    "/erase",
    response_model=DestinationReport,
    summary="Erase everything held about one destination",
    responses=admin_responses(401, 404, 422),
)
async def erase_route(
    application_id: ApplicationId,
    body: DestinationRequest,
    store: StoreDep,
    secrets: SecretsDep,
    client: ClientDep,
    limiter: LimiterDep,
) -> DestinationReport:
    """Delete the executions (running ones are terminated), the rows that name the
    destination, and anonymise its verification rows (analytics keep their counts)."""
    report = await erasure.erase_request(
        store,
        client,
        limiter,
        secret=secrets.code_secret,
        application_id=application_id,
        body=body,
    )
    return DestinationReport.model_validate(report, from_attributes=True)
