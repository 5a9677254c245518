"""The Node.js SDK (sdk-node/) against the real service: its `node --test` suite, built first.

One served stack and one `node --test` run over every test file of the SDK; the service's
address and keys reach node through the environment.
"""

from __future__ import annotations

from tests.helpers.api import Keys
from tests.helpers.node import ROOT, node_test, npm_ci, run

SDK = ROOT / "sdk-node"
FILES = [
    "test/flows.test.mjs",
    "test/retries.test.mjs",
    "test/webhooks.test.mjs",
]


async def test_node_sdk_suite_passes_against_the_service(service_url: str, keys: Keys) -> None:
    await npm_ci(SDK)
    build = await run(["npm", "run", "--silent", "build"], cwd=SDK)
    assert build.returncode == 0, f"the Node SDK does not build\n{build.output}"
    result = await node_test(
        SDK,
        FILES,
        env={"OTP_BASE_URL": service_url, "OTP_TEST_KEY": keys.test, "OTP_LIVE_KEY": keys.live},
    )
    assert result.returncode == 0, f"node --test failed\n{result.output}"
    assert "# fail 0" in result.stdout, result.output
