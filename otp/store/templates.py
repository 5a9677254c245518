"""Queries of message templates: versions per application, channel and locale.

A save adds a version (numbered per application: the next after its highest) and makes it
the active one of its channel and locale; a delete deactivates that channel and locale's
versions, which stay listable.
"""

from __future__ import annotations

import secrets

from sqlalchemy import func, insert, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from otp.domain import Channel
from otp.messages.custom import StoredTemplate, TemplateContent
from otp.store import Store
from otp.store.tables import Application, MessageTemplate, utcnow

TEMPLATE_ID_PREFIX = "tpl_"


def stored(row: MessageTemplate) -> StoredTemplate:
    return StoredTemplate(
        channel=Channel(row.channel),
        locale=row.locale,
        version=row.version,
        content=TemplateContent(
            text=row.text,
            subject=row.subject,
            html=row.html,
            whatsapp_template_name=row.whatsapp_template_name,
            whatsapp_language=row.whatsapp_language,
        ),
    )


async def save_template(
    store: Store,
    *,
    application_id: str,
    channel: Channel,
    locale: str,
    content: TemplateContent,
    created_by: str = "admin",
) -> MessageTemplate:
    """A new active version for this channel and locale (the previous one deactivated).

    Numbering is serialised per application: on PostgreSQL by locking its row, on SQLite
    by the single writer; a save that still collides (another process) takes the next."""
    t = MessageTemplate.__table__.c  # type: ignore[attr-defined]
    for _ in range(5):
        now = utcnow()
        try:
            async with store.writing() as conn:
                if conn.dialect.name == "postgresql":
                    await conn.execute(
                        select(col(Application.id))
                        .where(col(Application.id) == application_id)
                        .with_for_update()
                    )
                highest = (
                    await conn.execute(
                        sa_select(func.max(t.version)).where(t.application_id == application_id)
                    )
                ).scalar()
                row = MessageTemplate(
                    id=TEMPLATE_ID_PREFIX + secrets.token_hex(12),
                    application_id=application_id,
                    channel=channel.value,
                    locale=locale,
                    version=(highest or 0) + 1,
                    active=True,
                    created_by=created_by,
                    created_at=now,
                    **content.model_dump(),
                )
                await conn.execute(
                    update(MessageTemplate.__table__)  # type: ignore[attr-defined]
                    .where(
                        t.application_id == application_id,
                        t.channel == channel.value,
                        t.locale == locale,
                        t.active.is_(True),
                    )
                    .values(active=False, deactivated_at=now)
                )
                await conn.execute(
                    insert(MessageTemplate.__table__),  # type: ignore[attr-defined]
                    [row.model_dump()],
                )
        except IntegrityError:
            continue
        return row
    raise RuntimeError("could not number the template version")  # pragma: no cover


async def active_templates(store: Store, *, application_id: str) -> list[MessageTemplate]:
    """The application's active templates, by channel then locale."""
    query = (
        select(MessageTemplate)
        .where(
            col(MessageTemplate.application_id) == application_id,
            col(MessageTemplate.active).is_(True),
        )
        .order_by(col(MessageTemplate.channel), col(MessageTemplate.locale))
    )
    async with store.session() as session:
        return list((await session.exec(query)).all())


async def template_versions(
    store: Store, *, application_id: str, channel: Channel, locale: str
) -> list[MessageTemplate]:
    """Every version of one channel and locale, newest first."""
    query = (
        select(MessageTemplate)
        .where(
            col(MessageTemplate.application_id) == application_id,
            col(MessageTemplate.channel) == channel.value,
            col(MessageTemplate.locale) == locale,
        )
        .order_by(col(MessageTemplate.version).desc())
    )
    async with store.session() as session:
        return list((await session.exec(query)).all())


async def deactivate_templates(
    store: Store, *, application_id: str, channel: Channel, locale: str
) -> int:
    """Back to the catalogue for this channel and locale: how many versions were active."""
    async with store.session() as session:
        result = await session.exec(
            update(MessageTemplate)
            .where(
                col(MessageTemplate.application_id) == application_id,
                col(MessageTemplate.channel) == channel.value,
                col(MessageTemplate.locale) == locale,
                col(MessageTemplate.active).is_(True),
            )
            .values(active=False, deactivated_at=utcnow())
        )
        await session.commit()
    return int(result.rowcount or 0)
