"""/console/verifications: support's lookup. Search by exact destination (matched by its
keyed hash, as the API does), id, client_ref, status, channel and country; a
verification's page with its timeline from the event log, its delivery costs and a link
to its workflow in the Temporal UI. Destinations are only ever shown masked."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from api.console.services.scope import principal_for
from api.console.web import UserDep, render
from api.deps import SecretsDep, SettingsDep, StoreDep
from api.services import search
from api.services.verifications import require_id
from otp.domain import Channel, Status
from otp.store import costs as store_costs
from otp.store import records as store_records

router = APIRouter(prefix="/console", include_in_schema=False)
Mode = Literal["test", "live"]


@router.get("/verifications")
async def lookup(
    request: Request,
    user: UserDep,
    store: StoreDep,
    secrets: SecretsDep,
    app: Annotated[str, Query(max_length=64)] = "default",
    mode: Annotated[Mode, Query()] = "test",
    to: Annotated[str, Query(max_length=320)] = "",
    verification_id: Annotated[str, Query(max_length=64)] = "",
    client_ref: Annotated[str, Query(max_length=128)] = "",
    status: Annotated[Status | Literal[""], Query()] = "",
    channel: Annotated[Channel | Literal[""], Query()] = "",
    country: Annotated[str, Query(max_length=2)] = "",
) -> Response:
    principal = await principal_for(store, application_id=app, mode=mode)
    if verification_id:
        record = await store_records.get_record(
            store, verification_id=verification_id, application_id=app, mode=mode
        )
        records = [record] if record is not None else []
    else:
        filters = search.Filters(
            status=status or None,
            channel=channel or None,
            country=country or None,
            to=to or None,
            client_ref=client_ref or None,
        )
        records, _ = await search.search(
            store,
            principal=principal,
            secret=secrets.code_secret,
            query=search.Query(filters=filters, limit=50),
        )
    context = {
        "app": app,
        "mode": mode,
        "records": records,
        "statuses": [s.value for s in Status],
        "channels": [c.value for c in Channel],
        "asked": {
            "status": status,
            "channel": channel,
            "country": country,
            "client_ref": client_ref,
        },
    }
    return render(request, "lookup.html", context, console=user)


@router.get("/verifications/{verification_id}")
async def verification_page(
    request: Request,
    user: UserDep,
    store: StoreDep,
    settings: SettingsDep,
    verification_id: Annotated[str, Path(max_length=64)],
    app: Annotated[str, Query(max_length=64)] = "default",
    mode: Annotated[Mode, Query()] = "test",
) -> Response:
    principal = await principal_for(store, application_id=app, mode=mode)
    require_id(verification_id)
    events = await search.events(store, principal=principal, verification_id=verification_id)
    record = await store_records.get_record(
        store, verification_id=verification_id, application_id=app, mode=mode
    )
    costs = await store_costs.costs_of(store, verification_id=verification_id)
    temporal_ui = (
        f"http://{settings.temporal_host}:{settings.temporal_ui_port}/namespaces/"
        f"{settings.temporal_namespace}/workflows/{verification_id}"
    )
    context = {
        "app": app,
        "mode": mode,
        "record": record,
        "events": events,
        "costs": costs,
        "temporal_ui": temporal_ui,
    }
    return render(request, "verification.html", context, console=user)
