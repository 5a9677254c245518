"""Message templates: catalogue coverage, locale fallback, WebOTP / app hash, segments, HTML."""

from __future__ import annotations

import re

import pytest

from otp.domain import Channel
from otp.messages.sms import SmsEncoding, analyze, non_gsm7_characters
from otp.messages.templates import (
    CATALOGUE,
    LOCALES,
    normalize_locale,
    render,
    resolve_locale,
    ttl_minutes,
    voice_script,
)

REQUIRED: tuple[str, ...] = ("en", "es", "fr", "de", "pt", "it", "ja", "zh", "ar", "hi")
REQUIRED += ("ru", "tr", "id", "ko", "vi", "th", "pl", "nl", "sv", "uk")
# Every latin-script locale's SMS is GSM-7; the others are UCS-2 by nature.
GSM7_LANGUAGES = ("en", "es", "fr", "de", "pt", "it", "nl", "sv", "id", "tr", "pl", "vi")
UCS2_LANGUAGES = ("ja", "zh", "ar", "hi", "ru", "uk", "ko", "th")
CODE = "482915"
BRAND20 = "Acme Corporation Inc"
DOMAIN = "accounts.example-company.com"
APP_HASH = "FA+9qCX9VSu"
UNFILLED = re.compile(r"\$\{?[A-Za-z_]")

assert len(BRAND20) == 20


def test_the_catalogue_covers_the_required_languages() -> None:
    assert set(REQUIRED) <= set(LOCALES) and len(LOCALES) >= 20
    assert {tag.split("-")[0] for tag in LOCALES} == set(GSM7_LANGUAGES) | set(UCS2_LANGUAGES)
    assert all(CATALOGUE[tag].tag == tag for tag in LOCALES)
    assert [tag for tag in LOCALES if CATALOGUE[tag].rtl] == ["ar"]


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("brand", [BRAND20, ""])
def test_every_locale_renders_every_channel(locale: str, brand: str) -> None:
    for channel in Channel:
        message = render(channel, code=CODE, brand=brand, ttl_s=600, locale=locale)
        assert message.locale == locale
        parts = [message.subject, message.text, message.html or ""]
        assert not any(UNFILLED.search(part) for part in parts), (channel, parts)
        assert "  " not in message.subject and message.subject == message.subject.strip()
        if brand:
            assert brand in message.subject
        if channel is Channel.VOICE:
            assert message.text.endswith(" ".join(CODE))
            continue
        assert message.text.count(CODE) == 1, (channel, message.text)
        if brand:
            assert brand in message.text
        if channel is Channel.EMAIL:
            assert message.html is not None
            assert message.html.count(CODE) == 2  # in the sentence and as the big code
            assert f'lang="{locale}"' in message.html
        else:
            assert message.html is None
        if channel is Channel.SMS:
            assert message.segments == analyze(message.text).segments
            assert message.encoding == analyze(message.text).encoding
        else:
            assert message.segments is None and message.encoding is None


@pytest.mark.parametrize("locale", LOCALES)
def test_the_expiry_is_in_every_full_message(locale: str) -> None:
    minutes = CATALOGUE[locale].duration(10)
    assert "10" in minutes
    for channel in (Channel.WHATSAPP, Channel.EMAIL):
        assert minutes in render(channel, code=CODE, brand="", ttl_s=600, locale=locale).text


@pytest.mark.parametrize(
    ("locale", "resolved"),
    [
        ("pt-BR", "pt"),
        ("pt_BR", "pt"),
        ("PT-br", "pt"),
        ("pt-PT", "pt"),
        ("FR-ca", "fr"),
        ("es", "es"),
        ("es-419", "es"),
        ("de_DE.UTF-8", "de"),
        ("zh", "zh"),
        ("zh-CN", "zh"),
        ("zh-Hans", "zh"),
        ("zh-Hans-TW", "zh"),
        ("zh-TW", "zh-Hant"),
        ("zh_tw", "zh-Hant"),
        ("zh-HK", "zh-Hant"),
        ("zh-hant", "zh-Hant"),
        ("zh-Hant-TW", "zh-Hant"),
        ("ar-EG", "ar"),
        ("hi-IN", "hi"),
        ("ja-JP", "ja"),
        ("xx", "en"),
        ("xx-YY", "en"),
        ("en-GB", "en"),
        ("", "en"),
        ("  ", "en"),
        ("-", "en"),
    ],
)
def test_locale_fallback(locale: str, resolved: str) -> None:
    assert resolve_locale(locale) == resolved
    assert render(Channel.SMS, code=CODE, brand="", ttl_s=60, locale=locale).locale == resolved


def test_resolve_locale_against_another_table() -> None:
    assert resolve_locale("pt-BR", {"en": 1, "pt": 2}) == "pt"
    assert resolve_locale("zh-TW", {"en": 1, "zh": 2}) == "zh"
    assert resolve_locale("fr", {"en": 1}) == "en"


@pytest.mark.parametrize(
    ("tag", "normalized"),
    [("pt_br", "pt-BR"), ("ZH-hant-tw", "zh-Hant-TW"), ("es-419", "es-419"), ("EN", "en")],
)
def test_normalize_locale(tag: str, normalized: str) -> None:
    assert normalize_locale(tag) == normalized


def test_unknown_locale_renders_english() -> None:
    message = render(Channel.WHATSAPP, code="123456", brand="", ttl_s=600, locale="xx")
    assert message.text == (
        "Your verification code is 123456. It expires in 10 minutes. Do not share it with anyone."
    )
    assert message.subject == "Your verification code"


def test_brand_names_the_text_and_the_subject() -> None:
    message = render(Channel.EMAIL, code="ABC123", brand="Acme", ttl_s=300, locale="de")
    assert message.text.startswith("Ihr Bestätigungscode für Acme lautet ABC123.")
    assert message.subject == "Ihr Bestätigungscode für Acme"
    assert message.html is not None and 'lang="de"' in message.html and 'dir="ltr"' in message.html


def test_traditional_chinese_has_its_own_wording() -> None:
    hant = render(Channel.SMS, code=CODE, brand="Acme", ttl_s=600, locale="zh-TW").text
    hans = render(Channel.SMS, code=CODE, brand="Acme", ttl_s=600, locale="zh-CN").text
    assert hant == f"【Acme】您的驗證碼為{CODE}。10分鐘內有效。請勿告知他人。"
    assert hans == f"【Acme】您的验证码为{CODE}。10分钟内有效。请勿泄露给他人。"


@pytest.mark.parametrize(
    ("ttl_s", "minutes"),
    [(-5, 1), (0, 1), (30, 1), (60, 1), (61, 2), (599, 10), (600, 10), (601, 11)],
)
def test_minutes_round_up(ttl_s: int, minutes: int) -> None:
    assert ttl_minutes(ttl_s) == minutes
    unit = "minute" if minutes == 1 else "minutes"
    message = render(Channel.WHATSAPP, code="1", brand="", ttl_s=ttl_s, locale="en")
    assert f"expires in {minutes} {unit}." in message.text


@pytest.mark.parametrize(
    ("locale", "minutes", "phrase"),
    [
        ("fr", 1, "1 minute"),
        ("fr", 2, "2 minutes"),
        ("de", 1, "1 Minute"),
        ("es", 5, "5 minutos"),
        ("it", 1, "1 minuto"),
        ("ja", 5, "5分"),
        ("ar", 1, "دقيقة واحدة"),
        ("ar", 2, "دقيقتين"),
        ("ar", 10, "10 دقائق"),
        ("ar", 11, "11 دقيقة"),
        ("ar", 103, "103 دقائق"),
        ("hi", 1, "1 मिनट"),
    ],
)
def test_durations_use_the_plural_forms(locale: str, minutes: int, phrase: str) -> None:
    message = render(Channel.EMAIL, code=CODE, brand="", ttl_s=minutes * 60, locale=locale)
    assert phrase in message.text


# --- SMS: WebOTP line, SMS Retriever hash, segments ----------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
def test_webotp_line_is_exactly_the_last_line(locale: str) -> None:
    message = render(
        Channel.SMS, code=CODE, brand=BRAND20, ttl_s=600, locale=locale, web_domain="Example.COM"
    )
    human, _, last = message.text.rpartition("\n")
    assert last == f"@example.com #{CODE}"
    assert human.endswith("\n")  # a blank line separates it from the text
    assert CODE in human


@pytest.mark.parametrize("locale", LOCALES)
def test_app_hash_is_included_and_fits_one_segment(locale: str) -> None:
    message = render(
        Channel.SMS, code=CODE, brand=BRAND20, ttl_s=600, locale=locale, app_hash=APP_HASH
    )
    assert message.text.splitlines()[-1] == APP_HASH
    assert CODE in message.text
    assert message.segments == 1  # the SMS Retriever API reads messages of at most 140 bytes


def test_app_hash_precedes_the_webotp_line() -> None:
    message = render(
        Channel.SMS,
        code=CODE,
        brand="Acme",
        ttl_s=600,
        locale="en",
        web_domain=DOMAIN,
        app_hash=APP_HASH,
    )
    assert message.text == (
        f"Your Acme verification code is {CODE}. It expires in 10 minutes. "
        "Do not share it with anyone.\n\n"
        f"{APP_HASH}\n@{DOMAIN} #{CODE}"
    )
    assert (message.encoding, message.segments) == (SmsEncoding.GSM7, 1)


@pytest.mark.parametrize("channel", list(Channel))
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"web_domain": "https://example.com"}, "bare host name"),
        ({"web_domain": "example"}, "registered domain"),
        ({"web_domain": ""}, "non-empty"),
        ({"app_hash": "short"}, "11-character"),
        ({"app_hash": "FA+9qCX9VS="}, "11-character"),
    ],
)
def test_invalid_web_domain_or_app_hash_is_rejected(
    channel: Channel, kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        render(channel, code=CODE, brand="", ttl_s=600, locale="en", **kwargs)


def test_webotp_and_app_hash_only_change_sms() -> None:
    extra = {"web_domain": DOMAIN, "app_hash": APP_HASH}
    for channel in (Channel.WHATSAPP, Channel.EMAIL, Channel.VOICE):
        plain = render(channel, code=CODE, brand="", ttl_s=600, locale="en")
        assert render(channel, code=CODE, brand="", ttl_s=600, locale="en", **extra) == plain


@pytest.mark.parametrize("locale", LOCALES)
def test_sms_segment_bounds(locale: str) -> None:
    """A 20-character brand and a 6-digit code fit one SMS; with WebOTP, at most two."""
    language = locale.split("-")[0]
    plain = render(Channel.SMS, code=CODE, brand=BRAND20, ttl_s=600, locale=locale)
    assert plain.segments == 1, plain.text
    if language in GSM7_LANGUAGES:
        assert plain.encoding is SmsEncoding.GSM7, non_gsm7_characters(plain.text)
        # GSM-7 leaves room for the whole message: code, expiry and warning.
        assert plain.text.count(". ") == 2, plain.text
    else:
        assert language in UCS2_LANGUAGES and plain.encoding is SmsEncoding.UCS2, language
    webotp = render(
        Channel.SMS, code=CODE, brand=BRAND20, ttl_s=600, locale=locale, web_domain=DOMAIN
    )
    assert webotp.segments is not None and webotp.segments <= 2, webotp.text
    if language in GSM7_LANGUAGES:
        assert webotp.segments == 1 and webotp.encoding is SmsEncoding.GSM7


@pytest.mark.parametrize("locale", LOCALES)
def test_sms_prefers_the_most_complete_text_among_the_fewest_segments(locale: str) -> None:
    short = render(Channel.SMS, code=CODE, brand="A", ttl_s=600, locale=locale)
    entry = CATALOGUE[locale]
    warning = entry.sms_warning or entry.warning
    assert short.segments == 1 and short.text.endswith(warning)


def test_whatsapp_keeps_correct_orthography_where_sms_avoids_ucs2() -> None:
    sms = render(Channel.SMS, code=CODE, brand="", ttl_s=600, locale="es").text
    whatsapp = render(Channel.WHATSAPP, code=CODE, brand="", ttl_s=600, locale="es").text
    assert non_gsm7_characters(sms) == []
    assert whatsapp.startswith(f"Tu código de verificación es {CODE}.")


# --- Email HTML ------------------------------------------------------------------------------


def test_html_escapes_the_brand() -> None:
    brand = '<script>alert("x")</script> & Co'
    message = render(Channel.EMAIL, code="123456", brand=brand, ttl_s=600, locale="en")
    assert message.html is not None
    assert "<script>" not in message.html
    escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co"
    assert f"Your <bdi>{escaped}</bdi> verification code is 123456." in message.html
    assert f"<title>Your {escaped} verification code</title>" in message.html
    assert message.text.startswith(f"Your {brand} verification code")  # plain text is literal
    assert message.subject == f"Your {brand} verification code"


def test_html_escapes_the_code_and_catalogue_apostrophes() -> None:
    message = render(Channel.EMAIL, code="<b>", brand="", ttl_s=600, locale="fr")
    assert message.html is not None
    assert "<b>" not in message.html and "&lt;b&gt;" in message.html
    assert "n&#x27;avez pas demandé" in message.html


def test_arabic_html_is_right_to_left_with_the_brand_isolated() -> None:
    message = render(Channel.EMAIL, code=CODE, brand="Acme", ttl_s=120, locale="ar-EG")
    assert message.html is not None
    assert '<html lang="ar" dir="rtl">' in message.html
    assert "رمز التحقق من <bdi>Acme</bdi> هو" in message.html
    assert '<p dir="ltr" style="' in message.html  # the code box reads left to right
    assert "دقيقتين" in message.html


def test_dollar_signs_in_the_brand_are_not_placeholders() -> None:
    message = render(Channel.EMAIL, code="123456", brand="$code Bank", ttl_s=600, locale="en")
    assert message.text.startswith("Your $code Bank verification code is 123456.")
    assert message.html is not None and "$code Bank" in message.html


# --- Voice -----------------------------------------------------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
def test_voice_script_in_every_locale(locale: str) -> None:
    script = voice_script("58A7", brand="Acme", locale=locale)
    assert script.language_tag == locale
    assert script.digits == ("5", "8", "A", "7")
    assert "Acme" in script.intro and "$" not in script.intro
    assert script.repeat_phrase and "$" not in script.repeat_phrase
    plain = voice_script("58A7", locale=locale)
    assert "Acme" not in plain.intro and "  " not in plain.intro


def test_voice_script_wording_and_fallback() -> None:
    assert voice_script("1", brand="Acme", locale="en-US").intro == (
        "Your Acme verification code is"
    )
    assert voice_script("1", locale="de-AT").intro == "Ihr Bestätigungscode lautet"
    fallback = voice_script("1", locale="fi")
    assert (fallback.language_tag, fallback.repeat_phrase) == ("en", "Once again, your code is")
