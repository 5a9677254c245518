"""The safe list and the cache creates read it through."""

from __future__ import annotations

import pytest

from api.problems import SafeListEntryNotFound
from api.schemas.lockouts import SafeListAdd
from api.services import safe_list
from api.services.risk_caches import RiskCaches
from otp.domain import Mode
from otp.settings import Secrets
from otp.store import Store
from otp.store.applications import create_application
from otp.store.events import destination_hash

PHONE = "+14155550123"


async def test_a_safe_list_change_clears_the_cache(store: Store, secrets: Secrets) -> None:
    app = await create_application(store, name="a")
    caches = RiskCaches()
    scope = (app.id, "test")
    assert await caches.safe_hashes(store, scope) == frozenset()
    body = SafeListAdd(to=PHONE, mode=Mode.TEST, note=" QA ")
    entry = await safe_list.add_entry(
        store, caches, secret=secrets.code_secret, application_id=app.id, body=body, added_by="ops"
    )
    assert (entry.to_masked, entry.note, entry.added_by) == ("+1********23", "QA", "ops")
    assert await caches.safe_hashes(store, scope) == {destination_hash(secrets.code_secret, PHONE)}
    again = await safe_list.add_entry(
        store, caches, secret=secrets.code_secret, application_id=app.id, body=body, added_by="x"
    )
    assert again.id == entry.id  # already on the list: the entry in force

    removed = await safe_list.remove_entry(
        store, caches, application_id=app.id, entry_id=entry.id, removed_by="ops"
    )
    assert removed.removed_by == "ops"
    assert await caches.safe_hashes(store, scope) == frozenset()
    with pytest.raises(SafeListEntryNotFound):
        await safe_list.remove_entry(
            store, caches, application_id=app.id, entry_id="nope", removed_by="ops"
        )
