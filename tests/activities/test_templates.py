"""The delivery's message source: the active template per application, cached a few
seconds, and the catalogue when there is none or the store cannot be read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from activities.templates import TemplateBook
from otp.applications.model import ApplicationDefaults
from otp.domain import Channel, CodeType, DeliverInput, Mode
from otp.messages.custom import TemplateContent
from otp.store import Store
from otp.store import templates as store_templates
from otp.store.applications import create_application


def deliver_input(application_id: str, locale: str) -> DeliverInput:
    return DeliverInput(
        verification_id="ver_t",
        application_id=application_id,
        mode=Mode.TEST,
        step_index=0,
        channel=Channel.SMS,
        to="+14155550100",
        nonce="n",
        code_length=6,
        code_type=CodeType.NUMERIC,
        locale=locale,
        brand="Acme",
        expires_at=datetime.now(UTC) + timedelta(minutes=10),
    )


async def test_the_active_template_is_cached_for_its_ttl(store: Store) -> None:
    app = await create_application(store, name="T", defaults=ApplicationDefaults(locale="nl"))
    book = TemplateBook(store, ttl_s=60)
    first = await book.message(deliver_input(app.id, "nl"), code="111222", ttl_s=600)
    assert first.template is None and first.rendered.text.startswith("Je verificatiecode")
    await store_templates.save_template(
        store,
        application_id=app.id,
        channel=Channel.SMS,
        locale="nl",
        content=TemplateContent(text="Code {code}"),
    )
    cached = await book.message(deliver_input(app.id, "nl"), code="111222", ttl_s=600)
    assert cached.template is None  # within the TTL: what was read
    fresh = await TemplateBook(store).message(deliver_input(app.id, "fr"), code="1", ttl_s=600)
    assert fresh.template is not None and fresh.template.version == 1
    assert fresh.rendered.text == "Code 1" and fresh.rendered.locale == "nl"


async def test_an_unreadable_store_falls_back_to_the_catalogue(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreachable(*args: object, **kwargs: object) -> None:
        raise ConnectionRefusedError("store down")

    monkeypatch.setattr(store_templates, "active_templates", unreachable)
    book = TemplateBook(store)
    message = await book.message(deliver_input("app_x", "sv"), code="123", ttl_s=600)
    assert message.template is None and message.rendered.text.startswith("Din verifieringskod")
