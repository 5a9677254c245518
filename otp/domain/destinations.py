"""Destination parsing, normalisation and masking (phone numbers in E.164, emails)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from otp.domain.enums import Channel


class InvalidDestinationError(ValueError):
    """The destination is not a valid phone number or email address for the channel."""


@dataclass(frozen=True)
class Destination:
    value: str  # E.164 phone number or normalised email
    country: str | None  # ISO 3166-1 alpha-2 for phone numbers


def parse_phone(raw: str) -> Destination:
    text = raw.strip()
    if not text.startswith("+"):
        raise InvalidDestinationError(
            "phone numbers must be in international format, starting with + and the country code"
        )
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidDestinationError("not a parseable phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidDestinationError("not a valid phone number")
    return Destination(
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        phonenumbers.region_code_for_number(number),
    )


def parse_email(raw: str) -> Destination:
    try:
        info = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidDestinationError(f"not a valid email address: {exc}") from exc
    return Destination(info.normalized, None)


def parse_destination(raw: str, channel: Channel) -> Destination:
    return parse_phone(raw) if channel.is_phone else parse_email(raw)


def looks_like_email(raw: str) -> bool:
    return "@" in raw


def parse_any(raw: str) -> Destination:
    """An email address if it looks like one, else a phone number (no channel known)."""
    return parse_email(raw) if looks_like_email(raw) else parse_phone(raw)


def country_of(e164: str) -> str | None:
    """The ISO 3166-1 alpha-2 region of an E.164 number (`+14155550123` → `US`), or None."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None)) or None
    except phonenumbers.NumberParseException:
        return None


def _calling_code(e164: str) -> str | None:
    """The country calling code of an E.164 number (`+14155550123` → `1`), or None."""
    try:
        code = phonenumbers.parse(e164, None).country_code
    except phonenumbers.NumberParseException:
        return None
    return str(code) if code and e164[1:].startswith(str(code)) else None


# The mask shows this many last digits, and a short range at most as many leading national
# digits as leave, with the mask, `RANGE_HIDDEN_DIGITS` digits unknown (>= 10^5 candidates).
MASK_TAIL_DIGITS = 2
RANGE_HIDDEN_DIGITS = 5


def mask(value: str) -> str:
    """Mask a destination for logs, records and responses: `+1********23`, `j***@example.com`.

    A phone number keeps only its country calling code and its last 2 digits (a 10-digit
    national number leaves 10^8 candidates); an email its first character and domain.
    """
    if "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    digits = value[1:] if value.startswith("+") else value
    if "*" in digits and digits.replace("*", "").isdigit():
        return value  # masked already (a record's snapshot read back): masking is idempotent
    if len(digits) <= 6 or not digits.isdigit():
        return "*" * len(value)
    code = _calling_code("+" + digits) or ""
    hidden = len(digits) - len(code) - MASK_TAIL_DIGITS
    return f"+{code}" + "*" * hidden + digits[-MASK_TAIL_DIGITS:]


def number_prefix(e164: str) -> str | None:
    """The number range a phone number belongs to: itself without its last 4 digits
    (`+14155550123` → `+1415555`). None for anything that is not an E.164 number.

    Never stored in the clear: records, limiter keys and automatic blocks hold its keyed
    hash (`range_hash`); operator blocks are matched against it at check time."""
    if not e164.startswith("+") or not e164[1:].isdigit() or len(e164) < 9:
        return None
    return e164[:-4]


def short_range(e164: str) -> str | None:
    """The range an operator may read of a number: its country code and as many leading
    national digits as leave `RANGE_HIDDEN_DIGITS` unknown besides the mask's last digits
    (`+14155550123` → `+1415`). None for anything that is not an E.164 number."""
    if not e164.startswith("+") or not e164[1:].isdigit() or len(e164) < 9:
        return None
    code = _calling_code(e164) or ""
    national = len(e164) - 1 - len(code)
    shown = max(0, national - RANGE_HIDDEN_DIGITS - MASK_TAIL_DIGITS)
    return f"+{code}" + e164[1 + len(code) : 1 + len(code) + shown]


_RANGE_LABEL = b"otp/range/v1"


def range_hash(secret: bytes, prefix: str) -> str:
    """Keyed hash (HMAC-SHA-256, hex) of a number range (`number_prefix`): what conversion
    monitoring groups by, limiter keys count and automatic blocks match, without the range."""
    return hmac.new(secret, _RANGE_LABEL + b"|" + prefix.encode(), hashlib.sha256).hexdigest()
