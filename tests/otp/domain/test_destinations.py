"""Phone numbers to E.164, emails normalised, masking."""

from __future__ import annotations

import pytest

from otp.domain import Channel
from otp.domain.destinations import (
    InvalidDestinationError,
    country_of,
    looks_like_email,
    mask,
    parse_any,
    parse_destination,
    parse_email,
    parse_phone,
)


@pytest.mark.parametrize(
    ("raw", "e164", "country"),
    [
        ("+1 (415) 555-2671", "+14155552671", "US"),
        ("+44 20 7946 0958", "+442079460958", "GB"),
        ("+44 (0)20 7946 0958", "+442079460958", "GB"),  # national trunk 0 in brackets
        ("+33 6 12 34 56 78", "+33612345678", "FR"),
        ("+49 30 123456", "+4930123456", "DE"),
        ("+55 11 91234-5678", "+5511912345678", "BR"),
        ("+91 98765 43210", "+919876543210", "IN"),
        ("  +61 412 345 678 ", "+61412345678", "AU"),
    ],
)
def test_phone_numbers_normalise_to_e164(raw: str, e164: str, country: str) -> None:
    parsed = parse_phone(raw)
    assert parsed.value == e164 and parsed.country == country
    assert country_of(parsed.value) == country


@pytest.mark.parametrize("value", ["", "+", "not a number", "user@example.com", "+999123"])
def test_country_of_is_none_for_anything_but_a_number(value: str) -> None:
    assert country_of(value) is None


@pytest.mark.parametrize(
    "raw",
    [
        "4155552671",  # no country code
        "+1 415 555",  # too short
        "+999 123456",  # no such country
        "+1 000 000 0000",  # not a valid US number
        "not a number",
        "",
    ],
)
def test_invalid_phone_numbers_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidDestinationError):
        parse_phone(raw)


def test_error_messages_do_not_echo_the_number() -> None:
    with pytest.raises(InvalidDestinationError) as info:
        parse_phone("+1 000 000 0000")
    assert "000" not in str(info.value)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("alice@example.com", "alice@example.com"),
        ("  Alice@EXAMPLE.com ", "Alice@example.com"),
        ("bob+otp@sub.example.org", "bob+otp@sub.example.org"),
    ],
)
def test_emails_are_normalised(raw: str, normalised: str) -> None:
    assert parse_email(raw).value == normalised
    assert parse_email(raw).country is None


@pytest.mark.parametrize("raw", ["alice", "alice@", "@example.com", "a b@example.com", "a@@b.com"])
def test_invalid_emails_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidDestinationError):
        parse_email(raw)


def test_parse_destination_follows_the_channel() -> None:
    assert parse_destination("+14155552671", Channel.SMS).value == "+14155552671"
    assert parse_destination("+14155552671", Channel.WHATSAPP).country == "US"
    assert parse_destination("a@example.com", Channel.EMAIL).value == "a@example.com"
    with pytest.raises(InvalidDestinationError):
        parse_destination("a@example.com", Channel.VOICE)
    assert looks_like_email("a@example.com") and not looks_like_email("+14155552671")


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("+14155552671", "+1********71"),
        ("+442079460958", "+44********58"),
        ("+3531234567", "+353*****67"),
        ("alice@example.com", "a***@example.com"),
        ("+12345", "******"),
    ],
)
def test_mask(value: str, masked: str) -> None:
    assert mask(value) == masked
    assert len(mask(value)) == len(value) or "@" in value
    assert mask(mask(value)) == mask(value)  # a snapshot's destination is masked already


@pytest.mark.parametrize(
    ("number", "short"),
    [
        ("+14155552671", "+1415"),
        ("+442079460958", "+44207"),
        ("+3531234567", "+353"),
        ("+4915112345678", "+491511"),
    ],
)
def test_short_range_and_mask_leave_at_least_five_digits_unknown(number: str, short: str) -> None:
    from otp.domain.destinations import number_prefix, range_hash, short_range

    assert short_range(number) == short
    known = len(short) - 1 + 2  # the short range's digits and the mask's last two
    assert len(number) - 1 - known >= 5
    prefix = number_prefix(number)
    assert prefix is not None
    digest = range_hash(b"k" * 32, prefix)
    assert len(digest) == 64 and prefix not in digest
    assert digest != range_hash(b"j" * 32, prefix)  # keyed


def test_parse_any_takes_what_the_destination_looks_like() -> None:
    assert parse_any(" Jane@Example.com ").value == "Jane@example.com"
    assert parse_any("+1 415 555 2671") == parse_phone("+14155552671")
    with pytest.raises(InvalidDestinationError):
        parse_any("4155552671")
