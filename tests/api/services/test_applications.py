"""Applications and keys: ids, paging."""

from __future__ import annotations

import pytest

from api.auth import ApiKeyAuthenticator
from api.problems import ApiKeyNotFound, ApplicationNotFound
from api.services import applications
from otp.settings import Settings
from otp.store import Store
from otp.store.applications import create_application

PHONE = "+14155550123"


async def test_unknown_and_malformed_ids_are_404(store: Store, settings: Settings) -> None:
    with pytest.raises(ApplicationNotFound):
        applications.application_id_of("not an id")
    with pytest.raises(ApplicationNotFound):
        await applications.require_application(store, "app_" + "a" * 26)
    authenticator = ApiKeyAuthenticator.from_settings(settings)
    with pytest.raises(ApiKeyNotFound):
        await applications.revoke_key(store, authenticator, application_id="default", key_id="nope")


async def test_applications_page_on_from_the_last_id(store: Store) -> None:
    for name in ("a", "b", "c"):
        await create_application(store, name=name)
    first, after = await applications.list_applications(store, limit=2, after=None)
    assert len(first) == 2 and after == first[-1].id
    rest, last = await applications.list_applications(store, limit=2, after=after)
    assert len(rest) == 1 and last is None
