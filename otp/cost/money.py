"""Amounts of money as integer micro-units of a currency, parsed and printed exactly.

1 unit of a currency (a dollar, a euro) is 1 000 000 micros: exact for every price a
provider publishes (Twilio's have at most 5 decimals) and for sums of millions of them.
Amounts enter and leave the API as decimal strings (`"0.0083"`), never as floats.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation

MICROS = 1_000_000
# Large enough for any budget (a billion units), small enough for a signed 64-bit column.
MAX_MICROS = 10**15
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
_AMOUNT_RE = re.compile(r"^[0-9]{1,10}(\.[0-9]{1,6})?$")


def check_currency(currency: str) -> str:
    """An ISO 4217 alphabetic code (`USD`), upper-cased; ValueError otherwise."""
    code = currency.strip().upper()
    if not _CURRENCY_RE.match(code):
        raise ValueError("a currency is an ISO 4217 code of three letters, like 'USD'")
    return code


def parse_amount(value: str | int | Decimal) -> int:
    """A non-negative amount (`"0.0083"`, `12`, `Decimal("1.5")`) in micros; ValueError
    for a negative amount, more than 6 decimals or anything not a plain decimal number."""
    text = str(value).strip()
    if not _AMOUNT_RE.match(text):
        raise ValueError(
            "an amount is a non-negative decimal number with at most 6 decimals, like '0.0083'"
        )
    return int(Decimal(text) * MICROS)


def parse_provider_price(value: str) -> int | None:
    """A provider's reported price (Twilio writes charges as negative strings,
    `"-0.00790"`) as positive micros, rounded up to the micro; None if it is not a number."""
    try:
        amount = abs(Decimal(value.strip()))
    except (InvalidOperation, AttributeError):
        return None
    if not amount.is_finite():
        return None
    micros = int((amount * MICROS).to_integral_value(rounding=ROUND_CEILING))
    return micros if micros <= MAX_MICROS else None


def to_decimal(micros: int) -> Decimal:
    """The amount as a Decimal of currency units (exact)."""
    return Decimal(micros) / MICROS


def format_amount(micros: int) -> str:
    """The amount as a decimal string with at least 2 and at most 6 decimals: `0.0083`,
    `12.50`, `0.00`."""
    text = f"{to_decimal(micros):.6f}".rstrip("0")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def format_money(micros: int, currency: str) -> str:
    """`0.0083 USD`."""
    return f"{format_amount(micros)} {currency}"
