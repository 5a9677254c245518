"""/v1/admin: an application's message templates per channel and locale, versioned.

Same admin token as the rest of /v1/admin (`require_admin`). A PUT saves a new version
and makes it the active one; older versions stay listable; a DELETE goes back to the
built-in catalogue. The preview renders what a delivery would send, and sends nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Response, status

from api.deps import StoreDep, require_admin
from api.routes.admin import ApplicationId, admin_responses
from api.schemas.templates import (
    Preview,
    PreviewRequest,
    TemplateBody,
    TemplateList,
    TemplatePublic,
)
from api.services import templates
from otp.domain import Channel

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])

Locale = Annotated[
    str, Path(max_length=35, description="BCP 47 language tag (`en`, `pt-BR`).", examples=["en"])
]
OperatorHeader = Annotated[
    str | None,
    Header(alias="X-Operator", max_length=120, description="Who saves it (default `admin`)."),
]
_BASE = "/applications/{application_id}/templates"


@router.get(
    _BASE,
    response_model=TemplateList,
    summary="List an application's active templates",
    responses=admin_responses(401, 404),
)
async def list_templates_route(application_id: ApplicationId, store: StoreDep) -> TemplateList:
    """The active template of each channel and locale the application customised."""
    found = await templates.list_templates(store, application_id=application_id)
    return TemplateList(templates=found)


@router.post(
    _BASE + "/preview",
    response_model=Preview,
    summary="Render a template without sending anything",
    responses=admin_responses(401, 404, 422),
)
async def preview_template_route(
    application_id: ApplicationId, body: PreviewRequest, store: StoreDep
) -> Preview:
    """The message for `channel` and `locale`: the submitted `template`, else the stored one
    (with the delivery's fallback: locale, default locale, catalogue), with a sample code."""
    return await templates.preview(store, application_id=application_id, body=body)


@router.put(
    _BASE + "/{channel}/{locale}",
    response_model=TemplatePublic,
    status_code=status.HTTP_201_CREATED,
    summary="Save a template (a new active version)",
    responses=admin_responses(401, 404, 422),
)
async def save_template_route(
    application_id: ApplicationId,
    channel: Channel,
    locale: Locale,
    body: TemplateBody,
    store: StoreDep,
    operator: OperatorHeader = None,
) -> TemplatePublic:
    """Validate and save; deliveries use it within a few seconds. SMS: the answer's `sms`
    gives the encoding and segments of the text rendered with a sample code."""
    actor = operator.strip() if operator and operator.strip() else "admin"
    return await templates.save_template(
        store,
        application_id=application_id,
        channel=channel,
        locale=locale,
        body=body,
        actor=actor,
    )


@router.get(
    _BASE + "/{channel}/{locale}/versions",
    response_model=TemplateList,
    summary="List a template's versions",
    responses=admin_responses(401, 404, 422),
)
async def list_versions_route(
    application_id: ApplicationId, channel: Channel, locale: Locale, store: StoreDep
) -> TemplateList:
    """Every version saved for this channel and locale, newest first."""
    found = await templates.list_versions(
        store, application_id=application_id, channel=channel, locale=locale
    )
    return TemplateList(templates=found)


@router.delete(
    _BASE + "/{channel}/{locale}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Go back to the built-in catalogue",
    responses=admin_responses(401, 404, 422),
)
async def delete_template_route(
    application_id: ApplicationId, channel: Channel, locale: Locale, store: StoreDep
) -> Response:
    """Deactivate this channel and locale's template; its versions stay listable."""
    await templates.delete_template(
        store, application_id=application_id, channel=channel, locale=locale
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
