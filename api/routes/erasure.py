"""/v1/admin/applications/{id}/destinations: export and erase what is held about one
destination (admin token, like every admin route). The logic lives in `api.services.erasure`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ClientDep, LimiterDep, SecretsDep, StoreDep
from api.errors import ApplicationNotFound, field_error, invalid
from api.routes.admin import ApplicationId, _application_id, _responses, require_admin
from api.services import erasure
from otp.domain import Mode
from otp.domain.destinations import InvalidDestinationError
from otp.store.applications import get_application

router = APIRouter(
    prefix="/v1/admin/applications/{application_id}/destinations",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
)


class DestinationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Annotated[str, Field(min_length=1, max_length=320)] = Field(
        description="The phone number (E.164, `+14155550123`) or email address."
    )
    mode: Mode | None = Field(default=None, description="`live`, `test`, or null: both.")


class ExecutionPublic(BaseModel):
    workflow_id: str
    kind: str = Field(description="`verification` or `webhook_delivery`.")
    status: str | None = Field(description="As Temporal described it before any deletion.")


class DestinationReport(BaseModel):
    application_id: str
    to: str = Field(description="The destination, masked.")
    modes: list[str]
    verification_ids: list[str]
    tables: dict[str, int] = Field(description="Rows found (export) or erased, per table.")
    executions: list[ExecutionPublic] = Field(description="Temporal executions found.")
    executions_deleted: list[str] = Field(default_factory=list)
    rows: dict[str, list[dict[str, Any]]] | None = Field(
        default=None, description="Export only: every row, per table."
    )


async def _subject_args(
    application_id: str, body: DestinationRequest, store: StoreDep, secrets: SecretsDep
) -> dict[str, Any]:
    if await get_application(store, application_id=_application_id(application_id)) is None:
        raise ApplicationNotFound()
    try:
        erasure.subject_of(
            secret=secrets.code_secret, application_id=application_id, to=body.to, mode=body.mode
        )
    except InvalidDestinationError as exc:
        raise invalid([field_error("/to", str(exc))]) from None
    return {
        "secret": secrets.code_secret,
        "application_id": application_id,
        "to": body.to,
        "mode": body.mode,
    }


def _public(report: erasure.Report) -> DestinationReport:
    return DestinationReport.model_validate(report, from_attributes=True)


@router.post(
    "/export",
    response_model=DestinationReport,
    summary="Export everything held about one destination",
    responses=_responses(401, 404, 422),
)
async def export_route(
    application_id: ApplicationId,
    body: DestinationRequest,
    store: StoreDep,
    secrets: SecretsDep,
    client: ClientDep,
) -> DestinationReport:
    """The store's rows and the Temporal executions of the destination's verifications."""
    args = await _subject_args(application_id, body, store, secrets)
    return _public(await erasure.export_destination(store, client, **args))


@router.post(
    "/erase",
    response_model=DestinationReport,
    summary="Erase everything held about one destination",
    responses=_responses(401, 404, 422),
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
    args = await _subject_args(application_id, body, store, secrets)
    return _public(await erasure.erase_destination(store, client, limiter=limiter, **args))
