"""Provider template/voice languages follow the catalogue's locale rules; 5xx Retry-After counts."""

from __future__ import annotations

import httpx
import pytest

from providers.http import server_error
from providers.meta_whatsapp import template_language
from providers.twilio import voice_for


@pytest.mark.parametrize(
    ("locale", "meta", "voice"),
    [
        ("zh-Hant", "zh_TW", "cmn-TW"),
        ("zh-Hant-TW", "zh_TW", "cmn-TW"),
        ("zh-TW", "zh_TW", "cmn-TW"),
        ("zh", "zh_CN", "cmn-CN"),
        ("zh-Hans-CN", "zh_CN", "cmn-CN"),
        ("pt_br", "pt_BR", "pt-BR"),
        ("xx-YY", "en_US", "en-US"),
    ],
)
def test_template_language_and_voice_follow_the_catalogue(
    locale: str, meta: str, voice: str
) -> None:
    assert template_language(locale) == meta
    assert voice_for(locale)[0] == voice


def test_a_503_retry_after_becomes_the_errors_retry_hint() -> None:
    response = httpx.Response(503, headers={"Retry-After": "12"})
    error = server_error("twilio", response)
    assert error.reason == "provider_unavailable"
    assert error.retry_after_s == 12  # type: ignore[attr-defined]
