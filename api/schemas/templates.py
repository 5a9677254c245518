"""Request and response models of an application's message templates."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from api.schemas.base import RequestModel, ResponseModel
from otp.applications.model import BRAND_MAX, LOCALE_PATTERN
from otp.domain import CODE_LENGTH_MAX, TTL_MAX_S, TTL_MIN_S, Channel
from otp.messages.custom import TemplateContent
from otp.messages.sms import SmsEncoding
from otp.store.tables import MessageTemplate

TemplateSource = Literal["template", "catalogue"]


class TemplateBody(RequestModel, TemplateContent):
    """A template's content, as saved (a new version) or previewed."""


class SmsInfo(ResponseModel):
    """What an SMS costs: its encoding (GSM-7 or UCS-2) and segments."""

    encoding: SmsEncoding
    segments: int
    characters: int
    non_gsm7_characters: list[str] = Field(
        default_factory=list, description="The characters that make the text UCS-2."
    )


class TemplatePublic(ResponseModel):
    """One version of a template."""

    id: str
    channel: Channel
    locale: str
    version: int = Field(description="Numbered per application: names this version.")
    active: bool
    text: str
    subject: str | None = None
    html: str | None = None
    whatsapp_template_name: str | None = None
    whatsapp_language: str | None = None
    created_by: str
    created_at: datetime
    deactivated_at: datetime | None = None
    sms: SmsInfo | None = Field(
        default=None, description="SMS only: the text rendered with a sample code."
    )

    @classmethod
    def of(cls, row: MessageTemplate, *, sms: SmsInfo | None = None) -> TemplatePublic:
        return cls(
            id=row.id,
            channel=Channel(row.channel),
            locale=row.locale,
            version=row.version,
            active=row.active,
            text=row.text,
            subject=row.subject,
            html=row.html,
            whatsapp_template_name=row.whatsapp_template_name,
            whatsapp_language=row.whatsapp_language,
            created_by=row.created_by,
            created_at=row.created_at,
            deactivated_at=row.deactivated_at,
            sms=sms,
        )


class TemplateList(ResponseModel):
    templates: list[TemplatePublic]


class PreviewRequest(RequestModel):
    """What to render: the stored template (with fallback), or `template` as submitted."""

    channel: Channel
    locale: str = Field(default="en", max_length=35, pattern=LOCALE_PATTERN)
    template: TemplateBody | None = Field(
        default=None, description="Render this content instead of the stored templates."
    )
    code: str = Field(
        default="123456", min_length=1, max_length=CODE_LENGTH_MAX, pattern=r"^[0-9A-Za-z]+$"
    )
    brand: str | None = Field(
        default=None, max_length=BRAND_MAX, description="Default: the application's brand."
    )
    ttl_s: int = Field(default=600, ge=TTL_MIN_S, le=TTL_MAX_S)
    web_domain: str | None = Field(
        default=None, description="Default: the application's default web domain."
    )
    app_hash: str | None = Field(default=None, description="An SMS Retriever app hash.")


class Preview(ResponseModel):
    """The message a delivery would send; nothing is sent."""

    channel: Channel
    locale: str = Field(description="The locale rendered, after fallback.")
    source: TemplateSource = Field(
        description="`template`: the application's (or submitted) template; `catalogue`: "
        "the built-in one."
    )
    version: int | None = Field(
        default=None, description="The stored template version (null: submitted or catalogue)."
    )
    subject: str | None = None
    text: str
    html: str | None = None
    sms: SmsInfo | None = None
