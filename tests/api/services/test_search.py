"""Search filters, checked before the store is asked."""

from __future__ import annotations

from datetime import datetime

import pytest

from api.auth import Principal
from api.problems import InvalidRequest
from api.services import search
from otp.domain import Mode, Status
from otp.store.events import destination_hash

SECRET = b"s" * 32


def _parameter(raised: pytest.ExceptionInfo[InvalidRequest]) -> str:
    return str(raised.value.extensions["errors"][0]["parameter"])


def test_a_search_filter_is_scoped_and_matches_destinations_by_hash() -> None:
    principal = Principal("app_x", Mode.LIVE)
    where = search.search_filter(
        principal, SECRET, search.Filters(status=Status.APPROVED, country="us", to="+14155550123")
    )
    assert (where.application_id, where.mode, where.status, where.country) == (
        "app_x",
        "live",
        "approved",
        "US",
    )
    assert where.destination_hash == destination_hash(SECRET, "+14155550123")
    with pytest.raises(InvalidRequest) as raised:
        search.search_filter(principal, SECRET, search.Filters(to="nobody"))
    assert _parameter(raised) == "to"


def test_search_times_need_a_zone() -> None:
    with pytest.raises(InvalidRequest) as raised:
        search.require_zones(created_after=None, created_before=datetime(2026, 1, 1))
    assert _parameter(raised) == "created_before"
