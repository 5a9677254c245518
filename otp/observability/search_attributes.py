"""Custom search attributes operators filter by in the Temporal UI. Never personal data."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode

STATUS = SearchAttributeKey.for_keyword("OtpStatus")
CHANNEL = SearchAttributeKey.for_keyword("OtpChannel")
COUNTRY = SearchAttributeKey.for_keyword("OtpCountry")
APPLICATION = SearchAttributeKey.for_keyword("OtpApplication")
MODE = SearchAttributeKey.for_keyword("OtpMode")
# Why it ended, as a short code: the status, or for `blocked` the refusing control
# (`blocked:<code>`). Set with the terminal status, in the same upsert.
REASON = SearchAttributeKey.for_keyword("OtpReason")

ALL: tuple[SearchAttributeKey[str], ...] = (STATUS, CHANNEL, COUNTRY, APPLICATION, MODE, REASON)


def dev_server_args() -> list[str]:
    """`temporal server start-dev` flags that register every attribute."""
    args: list[str] = []
    for key in ALL:
        args += ["--search-attribute", f"{key.name}=Keyword"]
    return args


async def register(client: Client) -> list[str]:
    """Add the attributes the client's namespace lacks (idempotent); return the names added."""
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        present = set(listed.custom_attributes)
    except RPCError as err:
        # The Java time-skipping test server cannot list; it starts with none registered.
        if err.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        present = set()
    missing = {
        key.name: IndexedValueType.ValueType(key.indexed_value_type.value)
        for key in ALL
        if key.name not in present
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
    return sorted(missing)
