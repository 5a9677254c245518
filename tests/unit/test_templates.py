"""Message templates: locale fallback, brand, minutes, HTML escaping."""

from __future__ import annotations

import pytest

from otp.domain import Channel
from otp.templates import _TEXT, render, resolve_locale


@pytest.mark.parametrize(
    ("locale", "resolved"),
    [
        ("pt-BR", "pt"),
        ("pt_BR", "pt"),
        ("FR-ca", "fr"),
        ("es", "es"),
        ("xx", "en"),
        ("xx-YY", "en"),
        ("", "en"),
    ],
)
def test_locale_fallback(locale: str, resolved: str) -> None:
    assert resolve_locale(locale, _TEXT) == resolved


def test_portuguese_brazil_renders_portuguese() -> None:
    message = render(Channel.SMS, code="123456", brand="", ttl_s=600, locale="pt-BR")
    assert message.text.startswith("Seu código de verificação é 123456.")
    assert "10 minutos" in message.text
    assert message.html is None  # only email has an HTML part


def test_unknown_locale_renders_english() -> None:
    message = render(Channel.SMS, code="123456", brand="", ttl_s=600, locale="xx")
    assert message.text == (
        "Your verification code is 123456. It expires in 10 minutes. Do not share it with anyone."
    )
    assert message.subject == "Your verification code"


def test_brand_prefixes_the_text_and_names_the_subject() -> None:
    message = render(Channel.EMAIL, code="ABC123", brand="Acme", ttl_s=300, locale="de")
    assert message.text.startswith("Acme: Ihr Bestätigungscode lautet ABC123.")
    assert message.subject == "Ihr Acme Bestätigungscode"
    assert message.html is not None and 'lang="de"' in message.html


@pytest.mark.parametrize(
    ("ttl_s", "minutes"), [(0, 1), (30, 1), (60, 1), (61, 2), (599, 10), (600, 10), (601, 11)]
)
def test_minutes_round_up(ttl_s: int, minutes: int) -> None:
    message = render(Channel.SMS, code="1", brand="", ttl_s=ttl_s, locale="en")
    assert f"expires in {minutes} minutes" in message.text


def test_html_escapes_the_brand() -> None:
    brand = '<script>alert("x")</script> & Co'
    message = render(Channel.EMAIL, code="123456", brand=brand, ttl_s=600, locale="en")
    assert message.html is not None
    assert "<script>" not in message.html
    assert (
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co: Your verification"
        in message.html
    )
    assert message.text.startswith(brand + ": ")  # plain text stays literal
    assert message.html.count("123456") == 2  # in the sentence and as the big code


def test_dollar_signs_in_the_brand_are_not_placeholders() -> None:
    message = render(Channel.EMAIL, code="123456", brand="$code Bank", ttl_s=600, locale="en")
    assert message.text.startswith("$code Bank: Your verification code is 123456.")
