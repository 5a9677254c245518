"""Custom message templates of an application: their validation, rendering and fallback.

A template is the text of one channel in one locale, with variables in braces: ``{code}``,
``{brand}``, ``{minutes}`` (the TTL in whole minutes, rounded up), ``{app_hash}`` (the
Android SMS Retriever hash) and ``{domain}`` (the WebOTP domain). ``{{`` and ``}}`` are
literal braces. Rules, checked on save (every broken rule is one error, per field):

- ``{code}`` exactly once in the text (and in the email HTML, if given); never in a subject;
- no other variable, no format spec (``{code:>8}``), no positional ``{}``;
- SMS: the machine-readable lines come last and well-formed: the SMS Retriever line is
  ``{app_hash}`` alone, the WebOTP line is ``@{domain} #{code}`` and ends the message (its
  ``{code}`` is the only second one allowed). Left out, they are appended as the built-in
  catalogue does when the application sets a web domain or the request an app hash;
- length limits (``LIMITS``): rendered with the longest values (a 40-character brand, a
  10-character code), an SMS stays within ``SMS_MAX_SEGMENTS`` segments.

Fallback (``choose``): the template of the request's locale (exact tag, then shorter
prefixes), else the one of the application's default locale, else None: the built-in
catalogue in the request's locale.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from string import Formatter

from pydantic import BaseModel, Field

from otp.domain import Channel
from otp.messages.sms import analyze, non_gsm7_characters
from otp.messages.templates import RenderedMessage, find_locale, normalize_locale, ttl_minutes

VARIABLES = ("code", "brand", "minutes", "app_hash", "domain")
TEMPLATE_CHANNELS = (Channel.SMS, Channel.WHATSAPP, Channel.EMAIL)
SMS_MAX_SEGMENTS = 4
# Characters of each field as saved (before rendering).
LIMITS: Mapping[str, int] = {
    "sms.text": 612,
    "whatsapp.text": 1024,  # the body limit of a WhatsApp template
    "email.text": 10_000,
    "email.subject": 200,
    "email.html": 100_000,
}
# A Meta template name, or a Twilio Content SID.
WHATSAPP_NAME = re.compile(r"[a-z0-9_]{1,512}|HX[0-9a-f]{32}")
WHATSAPP_LANGUAGE = re.compile(r"[a-z]{2,3}(?:_[A-Z]{2})?")
# Longest values a variable takes (a 40-character brand, a 10-character code).
_WORST = {
    "code": "0" * 10,
    "brand": "B" * 40,
    "minutes": "1440",
    "app_hash": "A" * 11,
    "domain": "d" * 63 + ".example",
}
SAMPLE_CODE = "123456"


class TemplateContent(BaseModel):
    """What a template says on its channel (the fields the channel does not use stay unset)."""

    text: str = Field(description="The message (SMS, WhatsApp) or the email's plain-text part.")
    subject: str | None = Field(default=None, description="Email only: the subject (required).")
    html: str | None = Field(
        default=None,
        description="Email only: the HTML part; values are HTML-escaped. Unset: from `text`.",
    )
    whatsapp_template_name: str | None = Field(
        default=None,
        description="WhatsApp only: the name of the pre-approved authentication template the "
        "provider sends (Meta, Twilio content templates).",
    )
    whatsapp_language: str | None = Field(
        default=None, description="WhatsApp only: the approved template's language (`en_US`)."
    )


@dataclass(frozen=True)
class TemplateError:
    """One broken rule: the field (a JSON pointer into the request body) and what is wrong."""

    pointer: str
    detail: str


@dataclass(frozen=True)
class StoredTemplate:
    """An application's active template for one channel and locale, with its version."""

    channel: Channel
    locale: str
    version: int
    content: TemplateContent


def _fields(template: str) -> tuple[list[str], str | None]:
    """The variables of `template` in order, or the reason it cannot be parsed."""
    names: list[str] = []
    try:
        for _, name, spec, conversion in Formatter().parse(template):
            if name is None:
                continue
            if spec or conversion:
                return names, f"{{{name}}} takes no format spec or conversion"
            names.append(name)
    except ValueError as exc:
        return names, f"unbalanced braces ({exc}); write {{{{ and }}}} for literal braces"
    return names, None


def _check_variables(pointer: str, template: str, errors: list[TemplateError]) -> list[str]:
    names, problem = _fields(template)
    if problem is not None:
        errors.append(TemplateError(pointer, problem))
        return names
    unknown = sorted({n for n in names if n not in VARIABLES})
    if unknown:
        shown = ", ".join("{" + n + "}" if n else "{}" for n in unknown)
        allowed = ", ".join("{" + v + "}" for v in VARIABLES)
        errors.append(TemplateError(pointer, f"unknown variable {shown}; allowed: {allowed}"))
    return names


def _check_code_once(pointer: str, names: list[str], errors: list[TemplateError]) -> None:
    count = names.count("code")
    if count != 1:
        errors.append(TemplateError(pointer, f"{{code}} must appear exactly once (found {count})"))


def _check_sms_lines(text: str, errors: list[TemplateError]) -> list[str]:
    """The SMS's machine-readable lines; the variables of the text above them."""
    lines = text.split("\n")
    body_end = len(lines)
    if lines and lines[-1].startswith("@"):
        if lines[-1] != "@{domain} #{code}":
            errors.append(
                TemplateError("/text", "the WebOTP line must be exactly `@{domain} #{code}`")
            )
        body_end -= 1
    if body_end and lines[body_end - 1] == "{app_hash}":
        body_end -= 1
    body = lines[:body_end]
    for line in body:
        if line.startswith("@"):
            errors.append(
                TemplateError("/text", "the WebOTP line `@{domain} #{code}` must be the last line")
            )
            break
    for line in body:
        if "{app_hash}" in line:
            errors.append(
                TemplateError(
                    "/text",
                    "{app_hash} must be alone on its line, last (or just before the WebOTP line)",
                )
            )
            break
    names, _ = _fields("\n".join(body))
    return names


def validate(channel: Channel, content: TemplateContent) -> list[TemplateError]:
    """Every rule `content` breaks on `channel` (empty: it can be saved)."""
    errors: list[TemplateError] = []
    if channel not in TEMPLATE_CHANNELS:
        allowed = ", ".join(c.value for c in TEMPLATE_CHANNELS)
        return [TemplateError("/channel", f"templates exist for {allowed}, not {channel.value}")]
    limit = LIMITS[f"{channel.value}.text"]
    if not content.text.strip():
        errors.append(TemplateError("/text", "must not be empty"))
    elif len(content.text) > limit:
        errors.append(TemplateError("/text", f"at most {limit} characters"))
    names = _check_variables("/text", content.text, errors)
    if channel is Channel.SMS:
        body_names = _check_sms_lines(content.text, errors)
        _check_code_once("/text", body_names, errors)
    else:
        _check_code_once("/text", names, errors)

    if channel is Channel.EMAIL:
        if content.subject is None or not content.subject.strip():
            errors.append(TemplateError("/subject", "an email template needs a subject"))
        else:
            if len(content.subject) > LIMITS["email.subject"]:
                errors.append(
                    TemplateError("/subject", f"at most {LIMITS['email.subject']} characters")
                )
            if "\n" in content.subject or "\r" in content.subject:
                errors.append(TemplateError("/subject", "must be one line"))
            if "code" in _check_variables("/subject", content.subject, errors):
                errors.append(TemplateError("/subject", "must not contain {code}"))
        if content.html is not None:
            if len(content.html) > LIMITS["email.html"]:
                errors.append(TemplateError("/html", f"at most {LIMITS['email.html']} characters"))
            _check_code_once("/html", _check_variables("/html", content.html, errors), errors)
    else:
        for field in ("subject", "html"):
            if getattr(content, field) is not None:
                errors.append(TemplateError(f"/{field}", "only email templates have one"))

    if channel is Channel.WHATSAPP:
        name, language = content.whatsapp_template_name, content.whatsapp_language
        if name is not None and not WHATSAPP_NAME.fullmatch(name):
            errors.append(
                TemplateError(
                    "/whatsapp_template_name",
                    "a Meta template name (lowercase letters, digits and _) or a Twilio "
                    "Content SID (HX + 32 hex digits)",
                )
            )
        if language is not None and not WHATSAPP_LANGUAGE.fullmatch(language):
            errors.append(
                TemplateError("/whatsapp_language", "a WhatsApp language code such as en_US or fr")
            )
        if language is not None and name is None:
            errors.append(
                TemplateError("/whatsapp_language", "needs a whatsapp_template_name to apply to")
            )
    else:
        for field in ("whatsapp_template_name", "whatsapp_language"):
            if getattr(content, field) is not None:
                errors.append(TemplateError(f"/{field}", "only WhatsApp templates have one"))

    if channel is Channel.SMS and not errors:
        worst = render(
            channel,
            content,
            locale="en",
            code=_WORST["code"],
            brand=_WORST["brand"],
            minutes=_WORST["minutes"],
            app_hash=_WORST["app_hash"],
            web_domain=_WORST["domain"],
        )
        if worst.segments is not None and worst.segments > SMS_MAX_SEGMENTS:
            errors.append(
                TemplateError(
                    "/text",
                    f"with the longest values it takes {worst.segments} {worst.encoding} "
                    f"segments; at most {SMS_MAX_SEGMENTS}",
                )
            )
    return errors


def _fill(template: str, values: Mapping[str, str]) -> str:
    return template.format_map(values)


def render(
    channel: Channel,
    content: TemplateContent,
    *,
    code: str,
    brand: str,
    locale: str,
    minutes: str | None = None,
    ttl_s: int | None = None,
    web_domain: str | None = None,
    app_hash: str | None = None,
) -> RenderedMessage:
    """The message `content` says for these values (`content` must have passed `validate`).

    SMS: a ``{app_hash}`` or WebOTP line without a value is dropped; with a value and no
    such line, the line is appended, as the catalogue does.
    """
    if minutes is None:
        minutes = str(ttl_minutes(ttl_s if ttl_s is not None else 600))
    values = {
        "code": code,
        "brand": brand,
        "minutes": minutes,
        "app_hash": app_hash or "",
        "domain": web_domain or "",
    }
    if channel is Channel.SMS:
        lines = content.text.split("\n")
        has_webotp = bool(lines) and lines[-1] == "@{domain} #{code}"
        if has_webotp and not web_domain:
            lines.pop()
        has_hash = "{app_hash}" in lines
        if has_hash and not app_hash:
            lines.remove("{app_hash}")
        tail: list[str] = []
        if app_hash and not has_hash:
            tail.append(app_hash)
        if web_domain and not has_webotp:
            tail.append(f"@{web_domain} #{code}")
        text = _fill("\n".join(lines), values).rstrip("\n")
        if tail:
            # Before a WebOTP line the template kept, so that it stays the last line.
            if has_webotp and web_domain:
                head, _, last = text.rpartition("\n")
                text = f"{head}\n" + "\n".join(tail) + f"\n{last}"
            else:
                text = text + "\n\n" + "\n".join(tail)
        info = analyze(text)
        return RenderedMessage(
            subject="",
            text=text,
            encoding=info.encoding,
            segments=info.segments,
            locale=locale,
        )
    text = _fill(content.text, values)
    if channel is Channel.EMAIL:
        subject = _fill(content.subject or "", values)
        escaped = {key: html.escape(value) for key, value in values.items()}
        if content.html is not None:
            body = content.html.format_map(escaped)
        else:
            paragraphs = "".join(
                f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>\n"
                for p in text.split("\n\n")
                if p.strip()
            )
            body = (
                f'<!doctype html>\n<html lang="{html.escape(locale)}">\n<head>\n'
                f'<meta charset="utf-8">\n<title>{html.escape(subject)}</title>\n</head>\n'
                f"<body>\n{paragraphs}</body>\n</html>\n"
            )
        return RenderedMessage(subject=subject, text=text, html=body, locale=locale)
    return RenderedMessage(
        subject="",
        text=text,
        locale=locale,
        whatsapp_template_name=content.whatsapp_template_name,
        whatsapp_language=content.whatsapp_language,
    )


def non_gsm7(rendered: RenderedMessage) -> list[str]:
    """The characters that make an SMS UCS-2 (empty for GSM-7 and for other channels)."""
    return non_gsm7_characters(rendered.text) if rendered.encoding is not None else []


def choose(
    templates: Mapping[str, StoredTemplate], *, locale: str, default_locale: str | None
) -> StoredTemplate | None:
    """The template for `locale` among one channel's (by locale), else the application's
    default locale's, else None (the built-in catalogue)."""
    if not templates:
        return None
    for wanted in (locale, default_locale):
        if wanted:
            found = find_locale(wanted, templates)
            if found is not None:
                return templates[found]
    return None


def canonical_locale(locale: str) -> str:
    """The tag a template is saved under (``pt_br`` -> ``pt-BR``)."""
    return normalize_locale(locale)
