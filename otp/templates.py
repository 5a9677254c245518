"""Message templates per channel and locale, with fallback to the base language, then English."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from string import Template

from otp.domain import Channel


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    text: str
    html: str | None = None


# Placeholders: $brand, $code, $minutes. $brand_prefix is "Brand: " or "".
_TEXT: dict[str, str] = {
    "en": "${brand_prefix}Your verification code is $code. It expires in $minutes minutes. "
    "Do not share it with anyone.",
    "es": "${brand_prefix}Tu código de verificación es $code. Caduca en $minutes minutos. "
    "No lo compartas con nadie.",
    "fr": "${brand_prefix}Votre code de vérification est $code. Il expire dans $minutes minutes. "
    "Ne le partagez avec personne.",
    "de": "${brand_prefix}Ihr Bestätigungscode lautet $code. Er läuft in $minutes Minuten ab. "
    "Geben Sie ihn nicht weiter.",
    "pt": "${brand_prefix}Seu código de verificação é $code. Ele expira em $minutes minutos. "
    "Não o compartilhe com ninguém.",
    "it": "${brand_prefix}Il tuo codice di verifica è $code. Scade tra $minutes minuti. "
    "Non condividerlo con nessuno.",
}
_SUBJECT: dict[str, str] = {
    "en": "Your ${brand_space}verification code",
    "es": "Tu código de verificación ${brand_space}",
    "fr": "Votre code de vérification ${brand_space}",
    "de": "Ihr ${brand_space}Bestätigungscode",
    "pt": "Seu código de verificação ${brand_space}",
    "it": "Il tuo codice di verifica ${brand_space}",
}
_HTML = Template(
    """<!doctype html>
<html lang="$lang"><body style="font-family: sans-serif; line-height: 1.5">
<p>$intro</p>
<p style="font-size: 28px; font-weight: bold; letter-spacing: 4px">$code</p>
</body></html>
"""
)


def resolve_locale(locale: str, available: dict[str, str]) -> str:
    """Exact locale, then its base language (pt-BR -> pt), then English."""
    normalized = locale.replace("_", "-").strip()
    if normalized in available:
        return normalized
    base = normalized.split("-", 1)[0].lower()
    return base if base in available else "en"


def render(channel: Channel, *, code: str, brand: str, ttl_s: int, locale: str) -> RenderedMessage:
    lang = resolve_locale(locale, _TEXT)
    minutes = max(1, math.ceil(ttl_s / 60))
    values = {
        "brand_prefix": f"{brand}: " if brand else "",
        "brand_space": f"{brand} " if brand else "",
        "code": code,
        "minutes": str(minutes),
    }
    text = Template(_TEXT[lang]).substitute(values)
    subject = " ".join(Template(_SUBJECT[lang]).substitute(values).split())
    if channel is not Channel.EMAIL:
        return RenderedMessage(subject=subject, text=text)
    escaped = {k: html.escape(v) for k, v in values.items()}
    intro = Template(_TEXT[lang]).substitute({**escaped, "code": escaped["code"]})
    body = _HTML.substitute(lang=lang, intro=intro, code=escaped["code"])
    return RenderedMessage(subject=subject, text=text, html=body)
