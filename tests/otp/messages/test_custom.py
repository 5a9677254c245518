"""Custom templates: the rules checked on save, rendering, and the locale fallback."""

from __future__ import annotations

import pytest

from otp.domain import Channel
from otp.messages.custom import (
    SMS_MAX_SEGMENTS,
    StoredTemplate,
    TemplateContent,
    choose,
    render,
    validate,
)
from otp.messages.sms import SmsEncoding

DOMAIN = "app.example.com"
APP_HASH = "FA+9qCX9VSu"


def errors(channel: Channel, **fields: str) -> list[tuple[str, str]]:
    return [(e.pointer, e.detail) for e in validate(channel, TemplateContent(**fields))]


def test_a_valid_sms_template_has_no_errors() -> None:
    assert errors(Channel.SMS, text="{brand}: {code} is your code ({minutes} min).") == []
    assert errors(Channel.SMS, text="Code {code}\n{app_hash}\n@{domain} #{code}") == []
    assert errors(Channel.SMS, text="{{literal}} {code}") == []


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("No code here", "exactly once (found 0)"),
        ("{code} and {code}", "exactly once (found 2)"),
        ("{code} {name}", "unknown variable {name}"),
        ("{code} {}", "unknown variable {}"),
        ("{code:>8}", "format spec"),
        ("{code} {", "unbalanced braces"),
        ("@{domain} #{code}\nYour code", "must be the last line"),
        ("Your code {code}\n@{domain} {code}", "exactly `@{domain} #{code}`"),
        ("Code {code} {app_hash}", "{app_hash} must be alone on its line"),
        ("", "must not be empty"),
        ("{code}" + "x" * 700, "at most 612 characters"),
    ],
)
def test_sms_rules(text: str, fragment: str) -> None:
    found = errors(Channel.SMS, text=text)
    assert any(fragment in detail for _, detail in found), found
    assert all(pointer == "/text" for pointer, _ in found)


def test_an_sms_too_long_with_the_longest_values_is_refused() -> None:
    text = "{code} " + "{brand} " * 14  # 14 brands of 40 characters
    found = errors(Channel.SMS, text=text)
    assert any(f"at most {SMS_MAX_SEGMENTS}" in detail for _, detail in found), found


def test_email_rules_are_per_field() -> None:
    assert errors(Channel.EMAIL, text="Code {code}", subject="{brand} code") == []
    found = errors(Channel.EMAIL, text="Code {code}", subject="Code {code}\n", html="<b>x</b>")
    assert ("/subject", "must be one line") in found
    assert ("/subject", "must not contain {code}") in found
    assert ("/html", "{code} must appear exactly once (found 0)") in found
    assert ("/subject", "an email template needs a subject") in errors(Channel.EMAIL, text="{code}")


def test_fields_of_other_channels_are_refused() -> None:
    found = errors(Channel.SMS, text="{code}", subject="s", whatsapp_template_name="otp")
    assert {p for p, _ in found} == {"/subject", "/whatsapp_template_name"}
    refused = errors(Channel.WHATSAPP, text="{code}", whatsapp_template_name="Bad Name")
    assert [pointer for pointer, _ in refused] == ["/whatsapp_template_name"]
    twilio_sid = "HX" + "0a" * 16
    assert errors(Channel.WHATSAPP, text="{code}", whatsapp_template_name=twilio_sid) == []
    ok = errors(
        Channel.WHATSAPP,
        text="{code}",
        whatsapp_template_name="otp_auth",
        whatsapp_language="en_US",
    )
    assert ok == []
    assert errors(Channel.VOICE, text="{code}")[0][0] == "/channel"


def test_sms_render_adds_the_machine_lines_last() -> None:
    content = TemplateContent(text="{brand}: use {code} within {minutes} min")
    plain = render(Channel.SMS, content, code="123456", brand="Acme", locale="en", ttl_s=300)
    assert plain.text == "Acme: use 123456 within 5 min"
    assert (plain.encoding, plain.segments) == (SmsEncoding.GSM7, 1)
    both = render(
        Channel.SMS,
        content,
        code="123456",
        brand="Acme",
        locale="en",
        ttl_s=300,
        web_domain=DOMAIN,
        app_hash=APP_HASH,
    )
    assert both.text.endswith(f"\n\n{APP_HASH}\n@{DOMAIN} #123456")


def test_sms_lines_of_the_template_are_kept_or_dropped() -> None:
    content = TemplateContent(text="Код {code}\n{app_hash}\n@{domain} #{code}")
    full = render(
        Channel.SMS,
        content,
        code="9",
        brand="",
        locale="ru",
        web_domain=DOMAIN,
        app_hash=APP_HASH,
    )
    assert full.text == f"Код 9\n{APP_HASH}\n@{DOMAIN} #9"
    assert full.encoding is SmsEncoding.UCS2
    bare = render(Channel.SMS, content, code="9", brand="", locale="ru")
    assert bare.text == "Код 9"
    webotp_only = TemplateContent(text="Code {code}\n\n@{domain} #{code}")
    added = render(
        Channel.SMS,
        webotp_only,
        code="9",
        brand="",
        locale="en",
        web_domain=DOMAIN,
        app_hash=APP_HASH,
    )
    assert added.text == f"Code 9\n\n{APP_HASH}\n@{DOMAIN} #9"


def test_email_html_escapes_values() -> None:
    content = TemplateContent(text="Code {code}", subject="{brand}", html="<p>{brand}: {code}</p>")
    rendered = render(Channel.EMAIL, content, code="1", brand="<A&B>", locale="en")
    assert rendered.subject == "<A&B>"
    assert rendered.html == "<p>&lt;A&amp;B&gt;: 1</p>"
    generated = render(
        Channel.EMAIL,
        TemplateContent(text="a\n\n<b> {code}", subject="s"),
        code="1",
        brand="",
        locale="en",
    )
    assert generated.html is not None and "<p>&lt;b&gt; 1</p>" in generated.html


def _stored(locale: str, version: int) -> StoredTemplate:
    return StoredTemplate(Channel.SMS, locale, version, TemplateContent(text="{code}"))


def test_locale_fallback() -> None:
    templates = {"fr": _stored("fr", 1), "pt-BR": _stored("pt-BR", 2), "de": _stored("de", 3)}
    assert choose(templates, locale="fr-CA", default_locale="de") == templates["fr"]
    assert choose(templates, locale="pt-br", default_locale=None) == templates["pt-BR"]
    assert choose(templates, locale="ja", default_locale="de") == templates["de"]
    assert choose(templates, locale="ja", default_locale="es") is None  # the catalogue
    assert choose({}, locale="fr", default_locale="fr") is None
