"""SMS encoding and segment count: GSM-7 (GSM 03.38) when every character fits, else UCS-2.

A single GSM-7 SMS holds 160 septets; a concatenated one 153 per segment (the user data
header takes the rest). Characters of the GSM extension table (`^{}\\[~]|€` and form feed)
are sent as an escape plus a septet, so they count twice and are never split across
segments. UCS-2 holds 70 UTF-16 code units, or 67 per segment when concatenated; a
character outside the Basic Multilingual Plane is a surrogate pair (two units), never split.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# GSM 03.38 basic character set (the escape code 0x1B itself is not a character).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# GSM 03.38 default extension table: each costs two septets.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


class SmsEncoding(StrEnum):
    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


@dataclass(frozen=True)
class SmsSegments:
    encoding: SmsEncoding
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    characters: int


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def non_gsm7_characters(text: str) -> list[str]:
    """The distinct characters that force UCS-2, in order of appearance (to fix templates)."""
    seen: dict[str, None] = {}
    for ch in text:
        if ch not in GSM7_BASIC and ch not in GSM7_EXTENSION:
            seen.setdefault(ch)
    return list(seen)


def encoding_for(text: str) -> SmsEncoding:
    return SmsEncoding.GSM7 if is_gsm7(text) else SmsEncoding.UCS2


def _costs(text: str, encoding: SmsEncoding) -> list[int]:
    if encoding is SmsEncoding.GSM7:
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def analyze(text: str) -> SmsSegments:
    """Encoding, size in units and number of segments of one SMS body."""
    encoding = encoding_for(text)
    costs = _costs(text, encoding)
    units = sum(costs)
    single, multi = (
        (GSM7_SINGLE, GSM7_MULTI) if encoding is SmsEncoding.GSM7 else (UCS2_SINGLE, UCS2_MULTI)
    )
    if units <= single:
        return SmsSegments(encoding, units, 1, len(text))
    segments, used = 1, 0
    for cost in costs:  # an escape pair or surrogate pair never straddles two segments
        if used + cost > multi:
            segments, used = segments + 1, 0
        used += cost
    return SmsSegments(encoding, units, segments, len(text))


def segment_count(text: str) -> int:
    return analyze(text).segments
