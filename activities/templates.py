"""The message a delivery sends: the application's active template, else the catalogue.

Per application, the active templates and the default locale are read from the store once
and cached for `CACHE_TTL_S` seconds (per worker process): a saved template is in use
everywhere within that time. A store that cannot be read does not stop codes from going
out: the catalogue is used and the failure logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from cachetools import TTLCache

from otp.domain import Channel, DeliverInput
from otp.messages import custom
from otp.messages.custom import StoredTemplate
from otp.messages.sms import validate_app_hash, validate_web_domain
from otp.messages.templates import RenderedMessage, render
from otp.store import Store
from otp.store import applications as store_applications
from otp.store import templates as store_templates

logger = logging.getLogger("otp.activities.templates")

CACHE_TTL_S = 5.0
CACHE_SIZE = 4096


def catalogue_message(input: DeliverInput, *, code: str, ttl_s: int) -> RenderedMessage:
    """The built-in catalogue's message for this delivery."""
    return render(
        input.channel,
        code=code,
        brand=input.brand,
        ttl_s=ttl_s,
        locale=input.locale,
        web_domain=input.web_domain,
        app_hash=input.app_hash,
    )


@dataclass(frozen=True)
class ApplicationTemplates:
    """One application's active templates by channel and locale, and its default locale."""

    by_channel: Mapping[Channel, Mapping[str, StoredTemplate]]
    default_locale: str | None


@dataclass(frozen=True)
class Message:
    rendered: RenderedMessage
    template: StoredTemplate | None  # None: the built-in catalogue


class TemplateBook:
    """Renders a delivery's message with the application's template (cached a few seconds)."""

    def __init__(self, store: Store, *, ttl_s: float = CACHE_TTL_S) -> None:
        self._store = store
        self._cache: TTLCache[str, ApplicationTemplates] = TTLCache(CACHE_SIZE, ttl_s)

    async def templates_of(self, application_id: str) -> ApplicationTemplates:
        found = self._cache.get(application_id)
        if found is None:
            rows = await store_templates.active_templates(
                self._store, application_id=application_id
            )
            by_channel: dict[Channel, dict[str, StoredTemplate]] = {}
            for row in rows:
                template = store_templates.stored(row)
                by_channel.setdefault(template.channel, {})[template.locale] = template
            default_locale = None
            if rows:  # the default locale matters only when there are templates
                app = await store_applications.get_application(
                    self._store, application_id=application_id
                )
                default_locale = app.defaults.locale if app is not None else None
            found = ApplicationTemplates(by_channel, default_locale)
            self._cache[application_id] = found
        return found

    async def message(self, input: DeliverInput, *, code: str, ttl_s: int) -> Message:
        """The message for this delivery (`ValueError`: a bad web domain or app hash)."""
        web_domain = validate_web_domain(input.web_domain) if input.web_domain else None
        app_hash = validate_app_hash(input.app_hash) if input.app_hash is not None else None
        template: StoredTemplate | None = None
        try:
            templates = await self.templates_of(input.application_id)
            template = custom.choose(
                templates.by_channel.get(input.channel, {}),
                locale=input.locale,
                default_locale=templates.default_locale,
            )
        except Exception:
            logger.warning(
                "templates could not be read; using the catalogue",
                extra={"verification_id": input.verification_id},
                exc_info=True,
            )
        if template is None:
            return Message(catalogue_message(input, code=code, ttl_s=ttl_s), None)
        rendered = custom.render(
            input.channel,
            template.content,
            code=code,
            brand=input.brand,
            locale=template.locale,
            ttl_s=ttl_s,
            web_domain=web_domain,
            app_hash=app_hash,
        )
        return Message(rendered, template)
