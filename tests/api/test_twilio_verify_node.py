"""The official `twilio` Node SDK (npm), unchanged but for the Verify base URL, against the service.

The Node side is tests/twilio_node/ (its own package.json and committed lock); its
`node --test` files run here against the served stack.
"""

from __future__ import annotations

import pytest

from otp.applications.model import DEFAULT_APPLICATION_ID
from tests.helpers.api import Keys
from tests.helpers.node import ROOT, node_test

FOLDER = ROOT / "tests" / "twilio_node"


@pytest.mark.timeout(300)
async def test_the_node_sdk_drives_verify_v2(service_url: str, keys: Keys) -> None:
    result = await node_test(
        FOLDER,
        ["verify.test.js"],
        env={
            "SERVICE_URL": service_url,
            "OTP_USERNAME": DEFAULT_APPLICATION_ID,
            "OTP_KEY": keys.test,
        },
    )
    assert result.returncode == 0, result.output
