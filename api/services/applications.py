"""Applications and their API keys, as the admin API manages them.

A change an API process caches (an application's policy, a revoked key) is dropped
from this process's authenticator at once; other processes see it within its TTL.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from api.auth import ApiKeyAuthenticator
from api.problems import ApiKeyNotFound, ApplicationNotFound, field_error, invalid
from api.schemas.applications import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApplicationCreate,
    ApplicationUpdate,
)
from otp.applications.keys import APPLICATION_ID_RE, KEY_ID_RE
from otp.applications.model import ApiKeyPublic, ApplicationPublic
from otp.store import Store
from otp.store import applications as store_applications

logger = logging.getLogger("otp.api")


def application_id_of(value: str) -> str:
    """A well-formed application id, else the 404 of an unknown one."""
    if not APPLICATION_ID_RE.match(value):
        raise ApplicationNotFound()
    return value


async def require_application(store: Store, application_id: str) -> ApplicationPublic:
    """The application, or a 404 problem."""
    application = await store_applications.get_application(
        store, application_id=application_id_of(application_id)
    )
    if application is None:
        raise ApplicationNotFound()
    return application


async def create_application(store: Store, body: ApplicationCreate) -> ApplicationPublic:
    application = await store_applications.create_application(
        store,
        name=body.name,
        brand=body.brand,
        defaults=body.defaults,
        allowed_channels=body.allowed_channels,
        risk=body.risk,
    )
    logger.info("application created", extra={"application_id": application.id})
    return application


async def list_applications(
    store: Store, *, limit: int, after: str | None
) -> tuple[list[ApplicationPublic], str | None]:
    """A page of applications, oldest first, and the id to page on from (None: the last)."""
    applications = await store_applications.list_applications(store, limit=limit + 1, after=after)
    more = len(applications) > limit
    applications = applications[:limit]
    return applications, applications[-1].id if more else None


async def update_application(
    store: Store,
    authenticator: ApiKeyAuthenticator,
    *,
    application_id: str,
    body: ApplicationUpdate,
) -> ApplicationPublic:
    try:
        application = await store_applications.update_application(
            store,
            application_id=application_id_of(application_id),
            name=body.name,
            brand=body.brand,
            defaults=body.defaults,
            allowed_channels=body.allowed_channels,
            risk=body.risk,
        )
    except ValidationError as exc:
        raise invalid(
            [field_error("#/allowed_channels", str(e.get("msg", "invalid"))) for e in exc.errors()]
        ) from None
    if application is None:
        raise ApplicationNotFound()
    authenticator.forget(application_id=application.id)
    logger.info("application updated", extra={"application_id": application.id})
    return application


async def create_key(store: Store, *, application_id: str, body: ApiKeyCreate) -> ApiKeyCreated:
    """A new key of the application: the only time the key itself is returned."""
    try:
        created = await store_applications.create_api_key(
            store, application_id=application_id_of(application_id), mode=body.mode, name=body.name
        )
    except store_applications.ApplicationNotFoundError:
        raise ApplicationNotFound() from None
    logger.info(
        "api key created",
        extra={
            "application_id": application_id,
            "key_id": created.api_key.id,
            "mode": body.mode.value,
        },
    )
    return ApiKeyCreated(key=created.key, **created.api_key.model_dump())


async def list_keys(store: Store, *, application_id: str) -> list[ApiKeyPublic]:
    await require_application(store, application_id)
    return await store_applications.list_api_keys(store, application_id=application_id)


async def revoke_key(
    store: Store, authenticator: ApiKeyAuthenticator, *, application_id: str, key_id: str
) -> ApiKeyPublic:
    if not KEY_ID_RE.match(key_id):
        raise ApiKeyNotFound()
    revoked = await store_applications.revoke_api_key(
        store, key_id=key_id, application_id=application_id_of(application_id)
    )
    if revoked is None:
        raise ApiKeyNotFound()
    authenticator.forget(key_id=key_id)
    logger.info("api key revoked", extra={"application_id": application_id, "key_id": key_id})
    return revoked
