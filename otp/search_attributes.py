"""Custom search attributes operators filter by in the Temporal UI. Never personal data."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

STATUS = SearchAttributeKey.for_keyword("OtpStatus")
CHANNEL = SearchAttributeKey.for_keyword("OtpChannel")
COUNTRY = SearchAttributeKey.for_keyword("OtpCountry")
APPLICATION = SearchAttributeKey.for_keyword("OtpApplication")
MODE = SearchAttributeKey.for_keyword("OtpMode")

ALL: tuple[SearchAttributeKey[str], ...] = (STATUS, CHANNEL, COUNTRY, APPLICATION, MODE)


def dev_server_args() -> list[str]:
    """`temporal server start-dev` flags that register every attribute."""
    args: list[str] = []
    for key in ALL:
        args += ["--search-attribute", f"{key.name}=Keyword"]
    return args
