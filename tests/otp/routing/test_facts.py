"""The country facts file: every row valid and sourced, and what it says of senders."""

from __future__ import annotations

from pathlib import Path

import pytest

from otp.domain import Channel
from otp.domain.routing import SenderType
from otp.routing.facts import Alphanumeric, check_sender, country_facts, load_facts

REQUIRED = {"US", "CA", "GB", "FR", "DE", "IN", "BR", "MX", "AU", "JP", "CN"}


def test_every_row_is_valid_and_has_a_source() -> None:
    facts = country_facts()
    assert len(facts) >= 30
    assert set(facts) >= REQUIRED
    for fact in facts.values():
        assert fact.source.startswith("https://"), fact.country
        assert fact.name and fact.note, fact.country
        assert fact.numbers, fact.country
        assert fact.numbers <= {"long_code", "short_code", "toll_free"}, fact.country


def test_us_and_canada_need_a_number() -> None:
    for country in ("US", "CA"):
        fact = country_facts()[country]
        assert fact.alphanumeric is Alphanumeric.NOT_ALLOWED
        assert {"long_code", "short_code"} <= fact.numbers


def test_a_row_without_a_source_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "facts.csv"
    bad.write_text(
        "country,name,alphanumeric,numbers,note,source\nUS,United States,not_allowed,"
        "long_code,needs a number,\n"
    )
    with pytest.raises(ValueError, match="no source"):
        load_facts(bad)


def test_check_sender() -> None:
    refused = check_sender("US", Channel.SMS, SenderType.ALPHANUMERIC)
    assert refused is not None and refused.refused
    assert refused.source == "https://www.twilio.com/en-us/guidelines/us/sms"
    warned = check_sender("SG", Channel.SMS, SenderType.ALPHANUMERIC)
    assert warned is not None and not warned.refused and "regist" in warned.reason
    assert check_sender("GB", Channel.SMS, SenderType.ALPHANUMERIC) is None
    assert check_sender("US", Channel.SMS, SenderType.LONG_CODE) is None
    assert check_sender("US", Channel.SMS, SenderType.MESSAGING_SERVICE) is None
    no_short = check_sender("DE", Channel.SMS, SenderType.SHORT_CODE)
    assert no_short is not None and no_short.refused
    assert check_sender("US", Channel.WHATSAPP, SenderType.WHATSAPP_SENDER) is None
    assert check_sender("ZZ", Channel.SMS, SenderType.ALPHANUMERIC) is None  # no known facts
