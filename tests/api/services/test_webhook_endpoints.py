"""Which URLs a webhook endpoint may post to."""

from __future__ import annotations

import pytest

from api.problems import InvalidRequest
from api.services import webhook_endpoints
from otp.domain import Mode

PHONE = "+14155550123"


async def test_live_endpoints_must_be_https() -> None:
    url = "http://localhost:8080/hooks"
    assert await webhook_endpoints.checked_url(url, Mode.TEST) == url
    with pytest.raises(InvalidRequest) as raised:
        await webhook_endpoints.checked_url(url, Mode.LIVE)
    assert raised.value.extensions["errors"][0]["type"] == "unsafe_url"
