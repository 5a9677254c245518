"""The README's curl walk-through, run as written against a real stack.

Real `curl` in a shell, with the API served by uvicorn on a free port (its own Temporal
client to the session's dev server), a real worker with the production activities and a
data dir named `.data`, so `KEY=$(cat .data/dev_api_key)` reads the key the dev API
accepts. Each step's documented answer (`# -> 201 {...}`) is asserted: the status and
every quoted field, `...` standing for anything.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from otp.settings import Settings
from otp.store import Store
from tests.docs import walkthrough as wt
from tests.helpers.serving import served

CURL_TIMEOUT_S = 30
STATUS_MARK = "\n__http_status__="

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """The dev stack's data dir, named as the walk-through expects (`.data`)."""
    path = tmp_path / ".data"
    path.mkdir()
    return path


@pytest.fixture
async def base_url(
    api_settings: Settings,
    dev_env: WorkflowEnvironment,
    store: Store,
    worker: None,
) -> AsyncIterator[str]:
    """The API over HTTP, in dev mode (it accepts the dev key), with a worker behind it."""
    settings = api_settings.model_copy(
        update={"temporal_address": dev_env.client.service_client.config.target_host}
    )
    async with served(create_app(settings)) as url:
        yield url


def shell_env(variables: dict[str, str]) -> dict[str, str]:
    """A small environment: no proxies, no OTP_* settings, the walk-through's variables."""
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    env.update(NO_PROXY="*", no_proxy="*")
    env.update(variables)
    return env


async def shell(text: str, *, cwd: Path, variables: dict[str, str]) -> str:
    proc = await asyncio.create_subprocess_exec(
        "bash",
        "-euc",
        text,
        cwd=cwd,
        env=shell_env(variables),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), CURL_TIMEOUT_S)
    assert proc.returncode == 0, f"{text}\nexit {proc.returncode}: {err.decode()}"
    return out.decode()


async def curl(text: str, *, cwd: Path, variables: dict[str, str]) -> tuple[int, Any]:
    """Run a documented curl command as written, plus `-w` to learn the status."""
    out = await shell(f"{text} -w '{STATUS_MARK}%{{http_code}}'", cwd=cwd, variables=variables)
    body, _, status = out.rpartition(STATUS_MARK)
    return int(status), json.loads(body)


def assert_documented(expect: str, status: int, body: Any, code: str) -> dict[str, str]:
    """Assert a documented answer; return what its placeholders captured (the code)."""
    documented_status, fields = wt.documented_fields(expect)
    assert status == documented_status, (expect, status, body)
    assert fields, f"nothing to check in {expect!r}"
    captured: dict[str, str] = {}
    for key, documented in fields:
        actual = wt.find(body, key)
        if isinstance(documented, str):
            match = wt.value_pattern(documented, code).fullmatch(str(actual))
            assert match, (key, documented, actual)
            captured.update({k: v for k, v in match.groupdict().items() if v})
        else:
            assert actual == documented, (key, documented, actual)
    return captured


def test_the_getting_started_page_includes_the_readme_walkthrough() -> None:
    readme = wt.README.read_text()
    page = wt.GETTING_STARTED.read_text()
    assert wt.INCLUDE in page  # the page shows the README's own section, not a copy
    assert wt.START not in page and "curl -s" not in page
    assert wt.steps(wt.shell_block(wt.section(readme)))


async def test_the_readme_walkthrough_runs_as_documented(base_url: str, data_dir: Path) -> None:
    block = wt.shell_block(wt.section(wt.README.read_text()))
    example = wt.example_code(block)
    steps = wt.steps(block)
    assert sum(step.assignment is None for step in steps) >= 4, steps

    cwd = data_dir.parent
    variables: dict[str, str] = {}
    code: str | None = None
    last: Any = None
    outcomes: list[tuple[int, Any]] = []
    for step in steps:
        text = step.text.replace(wt.DOCUMENTED_BASE_URL, base_url)
        if (assignment := step.assignment) is not None:
            name, value = assignment
            if wt.PLACEHOLDER in value:  # "ID=ver_...   # the id from the answer"
                prefix = value.split(wt.PLACEHOLDER)[0]
                filled = str(wt.find(last, "id"))
                assert filled.startswith(prefix), (value, last)
                variables[name] = filled
            else:  # KEY=$(cat .data/dev_api_key)
                variables[name] = await shell(
                    f'{text}\nprintf %s "${name}"', cwd=cwd, variables=variables
                )
                assert variables[name], f"{text} set nothing"
            continue
        if code is not None:
            text = text.replace(example, code)
        status, body = await curl(text, cwd=cwd, variables=variables)
        if step.expect is not None:
            captured = assert_documented(step.expect, status, body, example)
            code = captured.get("code", code)
        else:
            assert status == 200, (text, status, body)
        last = body
        outcomes.append((status, body))

    assert code is not None and code != example, "the code never came from the inbox"
    created, _inbox, checked, story = outcomes
    assert created[0] == 201 and checked[1]["status"] == "approved"
    # Step 4, "its whole story": the same verification, approved, with its deliveries.
    assert story[1]["id"] == created[1]["id"] == variables["ID"]
    assert story[1]["status"] == "approved"
    assert [d["channel"] for d in story[1]["deliveries"]][:1] == ["sms"]
