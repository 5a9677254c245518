"""SMS encoding, segment count, and the machine-readable lines of a verification SMS.

Encoding: GSM-7 (GSM 03.38) when every character fits, else UCS-2.

A single GSM-7 SMS holds 160 septets; a concatenated one 153 per segment (the user data
header takes the rest). Characters of the GSM extension table (`^{}\\[~]|€` and form feed)
are sent as an escape plus a septet, so they count twice and are never split across
segments. UCS-2 holds 70 UTF-16 code units, or 67 per segment when concatenated; a
character outside the Basic Multilingual Plane is a surrogate pair (two units), never split.
"""

from __future__ import annotations

import re
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


# --- WebOTP / origin-bound one-time codes and the Android SMS Retriever app hash ------------
#
# Origin-bound one-time codes (WICG "sms-one-time-codes", used by the WebOTP API and by
# Safari's autocomplete=one-time-code): the LAST line of the message is `@<host> #<code>`,
# the host and code each a run of non-whitespace characters, separated by exactly one space;
# nothing may precede the `@` on that line. Chrome's parser accepts only `[A-Za-z0-9.-]` in
# the host, so an internationalised domain must be given in its A-label (`xn--`) form.
#
# SMS Retriever (Google Play services): the message must contain the code and the app's
# 11-character hash string (base64 of the SHA-256 of package name + signing certificate,
# truncated), and must be no longer than 140 bytes, i.e. one SMS segment.

APP_HASH_LENGTH = 11
_APP_HASH = re.compile(r"[A-Za-z0-9+/]{11}")
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_MAX_DOMAIN = 253


def validate_web_domain(domain: str) -> str:
    """The WebOTP host for `domain`, lower-cased; `ValueError` if it is not a bare DNS host name."""
    if not isinstance(domain, str) or not domain:
        raise ValueError("web_domain must be a non-empty host name such as 'example.com'")
    if not domain.isascii():
        raise ValueError(
            f"web_domain {domain!r} is not ASCII: give an internationalised domain "
            "in its IDNA A-label form (xn--...)"
        )
    host = domain.lower()
    if any(ch in host for ch in ":/?#@ \t\r\n"):
        raise ValueError(
            f"web_domain {domain!r} must be a bare host name such as 'example.com', "
            "without scheme, port, path or spaces"
        )
    labels = host.split(".")
    if len(host) > _MAX_DOMAIN or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(
            f"web_domain {domain!r} is not a valid DNS host name (labels of 1-63 letters, "
            "digits or inner hyphens, separated by single dots, no trailing dot)"
        )
    if host != "localhost" and (len(labels) < 2 or labels[-1].isdigit()):
        raise ValueError(
            f"web_domain {domain!r} must be a registered domain name such as 'example.com' "
            "(not a single label or an IP address)"
        )
    return host


def validate_app_hash(app_hash: str) -> str:
    """The SMS Retriever app hash, unchanged; `ValueError` unless 11 base64 characters."""
    if not isinstance(app_hash, str) or not _APP_HASH.fullmatch(app_hash):
        raise ValueError(
            "app_hash must be the 11-character SMS Retriever hash string of the Android app "
            "(base64 alphabet: A-Z, a-z, 0-9, '+', '/'; no padding)"
        )
    return app_hash


def webotp_line(domain: str, code: str) -> str:
    """The origin-bound one-time code line `@<domain> #<code>` (it must end the message)."""
    host = validate_web_domain(domain)
    if not code or any(ch.isspace() or ch == "#" for ch in code):
        raise ValueError("the code of a WebOTP line must be non-empty, without spaces or '#'")
    return f"@{host} #{code}"
