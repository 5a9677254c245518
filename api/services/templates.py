"""Message templates of an application: save (a new version), list, delete, preview.

Validation is `otp.messages.custom.validate`: every broken rule is one entry of the
`invalid-template` problem's `errors`, and nothing is saved. The preview resolves the
template exactly as a delivery does (locale, the application's default locale, then the
catalogue) and sends nothing.
"""

from __future__ import annotations

import re

from api.problems import InvalidTemplate, TemplateNotFound, field_error
from api.schemas.templates import Preview, PreviewRequest, SmsInfo, TemplateBody, TemplatePublic
from api.services.applications import require_application
from otp.applications.model import LOCALE_PATTERN
from otp.domain import Channel
from otp.messages import custom
from otp.messages.custom import StoredTemplate, TemplateContent
from otp.messages.sms import analyze, validate_app_hash, validate_web_domain
from otp.messages.templates import RenderedMessage, render
from otp.store import Store
from otp.store import templates as store_templates

_LOCALE = re.compile(LOCALE_PATTERN)


def locale_of(locale: str) -> str:
    """The canonical tag of a path's locale, or the problem of a malformed one."""
    tag = custom.canonical_locale(locale)
    if not _LOCALE.match(tag):
        raise InvalidTemplate([field_error("/locale", "not a BCP 47 language tag such as pt-BR")])
    return tag


def _content(body: TemplateBody) -> TemplateContent:
    return TemplateContent(**body.model_dump())


def _checked(channel: Channel, content: TemplateContent) -> None:
    errors = custom.validate(channel, content)
    if errors:
        raise InvalidTemplate([field_error(e.pointer, e.detail, "template") for e in errors])


def sms_info(rendered: RenderedMessage) -> SmsInfo | None:
    if rendered.encoding is None:
        return None
    info = analyze(rendered.text)
    return SmsInfo(
        encoding=info.encoding,
        segments=info.segments,
        characters=info.characters,
        non_gsm7_characters=custom.non_gsm7(rendered),
    )


def _sample(channel: Channel, content: TemplateContent, locale: str) -> SmsInfo | None:
    """An SMS template's encoding and segments, rendered with a sample code and no brand."""
    if channel is not Channel.SMS:
        return None
    rendered = custom.render(
        channel, content, code=custom.SAMPLE_CODE, brand="", locale=locale, ttl_s=600
    )
    return sms_info(rendered)


async def save_template(
    store: Store,
    *,
    application_id: str,
    channel: Channel,
    locale: str,
    body: TemplateBody,
    actor: str,
) -> TemplatePublic:
    await require_application(store, application_id)
    tag = locale_of(locale)
    content = _content(body)
    _checked(channel, content)
    row = await store_templates.save_template(
        store,
        application_id=application_id,
        channel=channel,
        locale=tag,
        content=content,
        created_by=actor,
    )
    return TemplatePublic.of(row, sms=_sample(channel, content, tag))


async def list_templates(store: Store, *, application_id: str) -> list[TemplatePublic]:
    await require_application(store, application_id)
    rows = await store_templates.active_templates(store, application_id=application_id)
    return [
        TemplatePublic.of(
            r, sms=_sample(Channel(r.channel), store_templates.stored(r).content, r.locale)
        )
        for r in rows
    ]


async def list_versions(
    store: Store, *, application_id: str, channel: Channel, locale: str
) -> list[TemplatePublic]:
    await require_application(store, application_id)
    rows = await store_templates.template_versions(
        store, application_id=application_id, channel=channel, locale=locale_of(locale)
    )
    if not rows:
        raise TemplateNotFound()
    return [TemplatePublic.of(r) for r in rows]


async def delete_template(
    store: Store, *, application_id: str, channel: Channel, locale: str
) -> None:
    await require_application(store, application_id)
    count = await store_templates.deactivate_templates(
        store, application_id=application_id, channel=channel, locale=locale_of(locale)
    )
    if count == 0:
        raise TemplateNotFound()


async def preview(store: Store, *, application_id: str, body: PreviewRequest) -> Preview:
    application = await require_application(store, application_id)
    brand = application.brand if body.brand is None else body.brand
    web_domain = body.web_domain if body.web_domain is not None else application.defaults.web_domain
    errors: list[dict[str, str]] = []
    if web_domain:
        try:
            web_domain = validate_web_domain(web_domain)
        except ValueError as exc:
            errors.append(field_error("/web_domain", str(exc)))
    if body.app_hash is not None:
        try:
            validate_app_hash(body.app_hash)
        except ValueError as exc:
            errors.append(field_error("/app_hash", str(exc)))
    if errors:
        raise InvalidTemplate(errors)
    template: StoredTemplate | None
    if body.template is not None:
        content = _content(body.template)
        problems = custom.validate(body.channel, content)
        if problems:
            raise InvalidTemplate(
                [field_error("/template" + e.pointer, e.detail, "template") for e in problems]
            )
        template = StoredTemplate(body.channel, custom.canonical_locale(body.locale), 0, content)
    else:
        rows = await store_templates.active_templates(store, application_id=application_id)
        by_locale = {
            r.locale: store_templates.stored(r) for r in rows if r.channel == body.channel.value
        }
        template = custom.choose(
            by_locale, locale=body.locale, default_locale=application.defaults.locale
        )
    if template is None:
        rendered = render(
            body.channel,
            code=body.code,
            brand=brand,
            ttl_s=body.ttl_s,
            locale=body.locale,
            web_domain=web_domain or None,
            app_hash=body.app_hash,
        )
        source, version = "catalogue", None
    else:
        rendered = custom.render(
            body.channel,
            template.content,
            code=body.code,
            brand=brand,
            locale=template.locale,
            ttl_s=body.ttl_s,
            web_domain=web_domain or None,
            app_hash=body.app_hash,
        )
        source, version = "template", (template.version or None)
    return Preview(
        channel=body.channel,
        locale=rendered.locale,
        source=source,
        version=version,
        subject=rendered.subject or None,
        text=rendered.text,
        html=rendered.html,
        sms=sms_info(rendered),
    )
