"""Template versions in the store, on SQLite and PostgreSQL: numbering per application,
one active version per channel and locale, deactivation, and the orphan purge."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from otp.domain import Channel
from otp.messages.custom import TemplateContent
from otp.settings import Settings
from otp.store import Store, retention
from otp.store import templates as store_templates
from otp.store.applications import create_application


def content(body: str) -> TemplateContent:
    return TemplateContent(text=body)


async def test_versions_are_numbered_per_application_and_one_is_active(any_store: Store) -> None:
    app = await create_application(any_store, name="A")
    other = await create_application(any_store, name="B")

    async def save(app_id: str, channel: Channel, locale: str, body: str) -> int:
        row = await store_templates.save_template(
            any_store, application_id=app_id, channel=channel, locale=locale, content=content(body)
        )
        return row.version

    assert await save(app.id, Channel.SMS, "en", "{code} 1") == 1
    assert await save(app.id, Channel.EMAIL, "en", "{code} 2") == 2
    assert await save(app.id, Channel.SMS, "en", "{code} 3") == 3
    assert await save(other.id, Channel.SMS, "en", "{code}") == 1
    # Concurrent saves each get their own number.
    numbers = await asyncio.gather(
        *(save(app.id, Channel.SMS, "fr", f"{{code}} {n}") for n in range(4))
    )
    assert sorted(numbers) == [4, 5, 6, 7]

    active = await store_templates.active_templates(any_store, application_id=app.id)
    assert sorted((r.channel, r.locale) for r in active) == [
        ("email", "en"),
        ("sms", "en"),
        ("sms", "fr"),
    ]
    assert next(r for r in active if (r.channel, r.locale) == ("sms", "en")).text == "{code} 3"
    versions = await store_templates.template_versions(
        any_store, application_id=app.id, channel=Channel.SMS, locale="en"
    )
    assert [(r.version, r.active) for r in versions] == [(3, True), (1, False)]

    assert (
        await store_templates.deactivate_templates(
            any_store, application_id=app.id, channel=Channel.SMS, locale="en"
        )
        == 1
    )
    versions = await store_templates.template_versions(
        any_store, application_id=app.id, channel=Channel.SMS, locale="en"
    )
    assert [r.active for r in versions] == [False, False]
    assert all(r.deactivated_at is not None for r in versions)


async def test_templates_are_kept_while_their_application_exists(any_store: Store) -> None:
    app = await create_application(any_store, name="Gone")
    kept = await create_application(any_store, name="Kept")
    for app_id in (app.id, kept.id):
        await store_templates.save_template(
            any_store,
            application_id=app_id,
            channel=Channel.SMS,
            locale="en",
            content=content("{code}"),
        )
    counts = await retention.purge_all(any_store, Settings())
    assert counts["message_templates"] == 0
    async with any_store.writing() as conn:  # an application removed out of band
        if any_store.engine.dialect.name == "postgresql":  # SQLite does not enforce the key
            await conn.execute(
                text(
                    "ALTER TABLE message_templates "
                    "DROP CONSTRAINT message_templates_application_id_fkey"
                )
            )
        await conn.execute(text("DELETE FROM applications WHERE id = :a"), {"a": app.id})
    counts = await retention.purge_all(any_store, Settings())
    assert counts["message_templates"] == 1
    left = await store_templates.active_templates(any_store, application_id=kept.id)
    assert len(left) == 1
