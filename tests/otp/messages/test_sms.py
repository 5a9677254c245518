"""GSM-7 / UCS-2 detection, SMS segment counts, and WebOTP / SMS Retriever input checks."""

from __future__ import annotations

import pytest

from otp.messages.sms import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    SmsEncoding,
    analyze,
    non_gsm7_characters,
    segment_count,
    validate_app_hash,
    validate_web_domain,
    webotp_line,
)


def test_tables_have_the_gsm_03_38_sizes() -> None:
    assert len(GSM7_BASIC) == 127  # 128 code points minus the escape
    assert len(GSM7_EXTENSION) == 10
    assert not GSM7_BASIC & GSM7_EXTENSION


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", SmsEncoding.GSM7, 0, 1),
        ("Acme: Your verification code is 482915.", SmsEncoding.GSM7, 39, 1),
        ("a" * 160, SmsEncoding.GSM7, 160, 1),
        ("a" * 161, SmsEncoding.GSM7, 161, 2),
        ("a" * 306, SmsEncoding.GSM7, 306, 2),
        ("a" * 307, SmsEncoding.GSM7, 307, 3),
        # Extension characters cost two septets...
        ("€" * 80, SmsEncoding.GSM7, 160, 1),
        ("{code}", SmsEncoding.GSM7, 8, 1),
        # ...and an escape pair never straddles two segments: 152 + 2 does not fit in 153.
        ("a" * 152 + "€" + "a" * 8, SmsEncoding.GSM7, 162, 2),
        ("€" * 81, SmsEncoding.GSM7, 162, 2),
        ("a" * 152 + "€" * 77, SmsEncoding.GSM7, 306, 3),
        # Accents of the basic set stay GSM-7; others force UCS-2.
        ("Vérifié: Ñandù, Ærø, Δ", SmsEncoding.GSM7, 22, 1),
        ("Código: 482915", SmsEncoding.UCS2, 14, 1),
        ("您的验证码是 482915", SmsEncoding.UCS2, 13, 1),
        ("ç" * 70, SmsEncoding.UCS2, 70, 1),
        ("ç" * 71, SmsEncoding.UCS2, 71, 2),
        ("ç" * 134, SmsEncoding.UCS2, 134, 2),
        ("ç" * 135, SmsEncoding.UCS2, 135, 3),
        # Astral characters are surrogate pairs (two units), never split.
        ("😀" * 35, SmsEncoding.UCS2, 70, 1),
        ("😀" * 36, SmsEncoding.UCS2, 72, 2),
        ("😀" * 34 + "a", SmsEncoding.UCS2, 69, 1),
    ],
)
def test_analyze(text: str, encoding: SmsEncoding, units: int, segments: int) -> None:
    info = analyze(text)
    assert (info.encoding, info.units, info.segments) == (encoding, units, segments)
    assert segment_count(text) == segments
    assert info.characters == len(text)


def test_non_gsm7_characters_names_the_culprits() -> None:
    assert non_gsm7_characters("Tu código de verificación es 1234") == ["ó"]
    assert non_gsm7_characters("Plain ASCII {ok} €") == []
    assert non_gsm7_characters("“quoted” – ç") == ["“", "”", "–", "ç"]  # noqa: RUF001


@pytest.mark.parametrize(
    ("domain", "host"),
    [
        ("example.com", "example.com"),
        ("Accounts.Example-Company.COM", "accounts.example-company.com"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("localhost", "localhost"),
        ("a" * 63 + ".com", "a" * 63 + ".com"),
    ],
)
def test_valid_web_domains_are_lower_cased(domain: str, host: str) -> None:
    assert validate_web_domain(domain) == host


@pytest.mark.parametrize(
    ("domain", "message"),
    [
        ("", "non-empty"),
        ("https://example.com", "bare host name"),
        ("example.com/login", "bare host name"),
        ("example.com:8443", "bare host name"),
        ("user@example.com", "bare host name"),
        ("exa mple.com", "bare host name"),
        ("example.com.", "not a valid DNS host name"),
        (".example.com", "not a valid DNS host name"),
        ("exa..mple.com", "not a valid DNS host name"),
        ("-example.com", "not a valid DNS host name"),
        ("example-.com", "not a valid DNS host name"),
        ("under_score.com", "not a valid DNS host name"),
        ("a" * 64 + ".com", "not a valid DNS host name"),
        (("a" * 60 + ".") * 5 + "com", "not a valid DNS host name"),
        ("bücher.example", "A-label"),
        ("example", "registered domain"),
        ("192.168.0.1", "registered domain"),
    ],
)
def test_invalid_web_domains_are_rejected(domain: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_web_domain(domain)


def test_webotp_line() -> None:
    assert webotp_line("Example.com", "482915") == "@example.com #482915"
    for code in ("", "48 29", "48#29"):
        with pytest.raises(ValueError, match="code of a WebOTP line"):
            webotp_line("example.com", code)


@pytest.mark.parametrize("app_hash", ["FA+9qCX9VSu", "abcdefghijk", "0123456789/"])
def test_valid_app_hashes(app_hash: str) -> None:
    assert validate_app_hash(app_hash) == app_hash


@pytest.mark.parametrize(
    "app_hash", ["", "FA+9qCX9VS", "FA+9qCX9VSuX", "FA+9qCX9VS=", "FA-9qCX9VSu", "FA+9qCX9VS "]
)
def test_invalid_app_hashes_are_rejected(app_hash: str) -> None:
    with pytest.raises(ValueError, match="11-character SMS Retriever hash"):
        validate_app_hash(app_hash)
