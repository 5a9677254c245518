"""The Node.js SDK (sdk-node/): its `node --test` suite against the real service, its types.

One served stack and one `node --test` run over every test file of the SDK; the service's
address and keys reach node through the environment.
"""

from __future__ import annotations

from tests.helpers.api import Keys
from tests.helpers.node import node_test, run
from tests.sdk_node.sdk import built_sdk

FILES = [
    "test/flows.test.mjs",
    "test/retries.test.mjs",
    "test/webhooks.test.mjs",
]


async def test_node_sdk_suite_passes_against_the_service(service_url: str, keys: Keys) -> None:
    sdk = await built_sdk()
    result = await node_test(
        sdk,
        FILES,
        env={"OTP_BASE_URL": service_url, "OTP_TEST_KEY": keys.test, "OTP_LIVE_KEY": keys.live},
    )
    assert result.returncode == 0, f"node --test failed\n{result.output}"
    assert "# fail 0" in result.stdout, result.output


async def test_node_sdk_types_serve_esm_and_commonjs_consumers() -> None:
    """Consumers of both module kinds type-check through the package's `exports` map."""
    sdk = await built_sdk()
    result = await run(["npm", "run", "--silent", "typecheck:consumers"], cwd=sdk)
    assert result.returncode == 0, f"the consumers do not type-check\n{result.output}"
