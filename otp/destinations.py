"""Destination parsing, normalisation and masking (phone numbers in E.164, emails)."""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from otp.domain import Channel


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


def mask(value: str) -> str:
    """Mask a destination for logs and responses: +1415*****67, j***@example.com."""
    if "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    if len(value) <= 6:
        return "*" * len(value)
    return value[:5] + "*" * (len(value) - 7) + value[-2:]


def number_prefix(e164: str) -> str | None:
    """The number range a phone number belongs to: itself without its last 4 digits
    (`+14155550123` → `+1415555`). None for anything that is not an E.164 number."""
    if not e164.startswith("+") or not e164[1:].isdigit() or len(e164) < 9:
        return None
    return e164[:-4]
