"""Analytics time ranges, checked before the store is asked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.problems import InvalidRequest
from api.services import analytics


def _parameter(raised: pytest.ExceptionInfo[InvalidRequest]) -> str:
    return str(raised.value.extensions["errors"][0]["parameter"])


def test_the_default_range_is_the_last_seven_days() -> None:
    end = datetime(2026, 1, 8, tzinfo=UTC)
    assert analytics.time_range(None, end) == (end - timedelta(days=7), end)


@pytest.mark.parametrize(
    ("after", "before", "parameter"),
    [
        (datetime(2026, 1, 1), datetime(2026, 1, 2, tzinfo=UTC), "created_after"),
        (datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC), "created_after"),
        (datetime(2024, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC), "created_after"),
        (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2), "created_before"),
    ],
)
def test_a_bad_range_is_refused(after: datetime, before: datetime, parameter: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        analytics.time_range(after, before)
    assert _parameter(raised) == parameter
