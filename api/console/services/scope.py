"""The application and mode a console page works on, as the `Principal` the API's
services expect (the console calls them directly, never the HTTP API)."""

from __future__ import annotations

from api.auth import Principal
from api.services.applications import require_application
from otp.domain import Mode
from otp.store import Store


async def principal_for(store: Store, *, application_id: str, mode: str) -> Principal:
    """The principal of an application in a mode; the 404 problem of an unknown one."""
    application = await require_application(store, application_id)
    return Principal(
        application_id=application.id,
        mode=Mode(mode),
        brand=application.brand,
        defaults=application.defaults,
        allowed_channels=frozenset(application.allowed_channels),
        risk=application.risk,
    )
