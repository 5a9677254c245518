"""The otp-verification skill: every code block runs, or is type-checked, against the service.

Block by block (`tests/skills/blocks.py` places each; an unplaced block fails):
- FastAPI, Flask, Django: the reference's code written to files, imported, served on a
  real socket (uvicorn; werkzeug's WSGI server for Flask and Django, whose views block),
  and driven send -> code from the sandbox inbox -> verify against the real service; the
  service's own signed webhooks are delivered to each webhook route and must succeed.
- Express and Next.js: written into tests/skills/node/generated/, the TypeScript of
  Next.js type-checked and compiled by `tsc`, then both driven by node's test runner
  (tests/skills/node/*.test.mjs) against the same service, webhooks included.
- Shell (curl): each page's steps run in bash against the service, every documented answer
  (`# -> <status> {...}`) asserted; the `.env` block names exactly the variables the code reads.
- scripts/detect_stack.py on fixture workspaces; scripts/check_flow.py against the service
  (exit 0), through the served apps (`--app`), and with a wrong key (exit 1, clear message).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import shutil
import sys
import threading
import time
import types
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml

from tests.docs import walkthrough as wt
from tests.helpers.api import Keys, wrong_code
from tests.helpers.node import node_executable, node_test, npm_ci, run
from tests.helpers.serving import free_port
from tests.skills.blocks import KINDS, PAGES, SKILL, Block, all_blocks, kind, of_kind

NODE_DIR = Path(__file__).parent / "node"
SCRIPTS = SKILL / "scripts"
SENT = {"message": "If this address can receive codes, one is on its way."}
WRONG = {"verified": False, "error": "The code is wrong or has expired."}
CODE_RE = re.compile(r"\b([0-9]{6})\b")
PREMIUM_RATE = "+19005550123"  # refused by the default risk policy (number type)
SESSION_SECRET = "skill-test-session-secret-0123456789"


def unique_email(stack: str) -> str:
    return f"skill-{stack}-{uuid.uuid4().hex[:10]}@example.com"


# --------------------------------------------------------------------------- the folder
def test_front_matter_names_and_describes_the_skill() -> None:
    text = (SKILL / "SKILL.md").read_text()
    match = re.match(r"^---\n(?P<meta>.*?)\n---\n", text, re.DOTALL)
    assert match, "SKILL.md starts with YAML front matter"
    meta = yaml.safe_load(match["meta"])
    assert set(meta) == {"name", "description"}
    assert meta["name"] == SKILL.name and re.fullmatch(r"[a-z0-9-]{1,64}", meta["name"])
    assert 100 < len(meta["description"]) <= 1024
    for stack in ("Express", "FastAPI", "Django", "Flask", "Next.js"):
        assert stack in meta["description"]
    for page in ("api", "webhooks", "express", "fastapi", "django", "flask", "nextjs"):
        assert (SKILL / "reference" / f"{page}.md") in PAGES
    for named in ("reference/api.md", "reference/webhooks.md", "reference/<stack>.md"):
        assert named in text, named


def test_every_block_has_a_runner() -> None:
    kinds = [kind(block) for block in all_blocks()]  # raises for an unplaced block
    assert set(kinds) == KINDS


def test_a_block_without_a_runner_is_refused() -> None:
    for stray in (
        Block("reference/fastapi.md", "js", "x.js", "", 1),
        Block("reference/api.md", "sh", None, "", 1),
        Block("reference/webhooks.md", "python", "x.py", "", 1),
    ):
        with pytest.raises(ValueError, match=r"no t|no runner"):
            kind(stray)


def test_the_env_block_names_the_variables_the_code_reads() -> None:
    (block,) = of_kind("env")
    names = {line.split("=", 1)[0] for line in block.code.splitlines() if line.strip()}
    assert names == {"OTP_URL", "OTP_API_KEY", "OTP_WEBHOOK_SECRET"}
    for stack in ("fastapi", "flask", "django", "express", "nextjs"):
        code = "".join(b.code for b in of_kind(stack))
        for name in names:
            assert name in code, (stack, name)
        assert not re.search(r"otp_(test|live)_[A-Za-z0-9]{8,}|whsec_[A-Za-z0-9+/]{8,}", code)


# ----------------------------------------------------------------------- detect_stack.py
WORKSPACES: dict[str, dict[str, str]] = {
    "express": {"package.json": '{"dependencies": {"express": "^5.1.0"}}'},
    "nextjs": {"package.json": '{"dependencies": {"next": "15.0.0", "react": "19.0.0"}}'},
    "fastapi": {"pyproject.toml": '[project]\ndependencies = ["fastapi[standard]>=0.115"]\n'},
    "flask": {"requirements.txt": "Flask==3.1.0\nflask-cors\n"},
    "django": {"manage.py": "import django\n", "requirements.txt": "Django>=5.2\n"},
}


async def detect(folder: Path) -> dict[str, Any]:
    result = await run([sys.executable, str(SCRIPTS / "detect_stack.py"), str(folder)], cwd=folder)
    assert result.returncode == 0, result.output
    found: dict[str, Any] = json.loads(result.stdout)
    return found


async def test_detect_stack_finds_each_stack(tmp_path: Path) -> None:
    for stack, files in WORKSPACES.items():
        folder = tmp_path / stack
        folder.mkdir()
        for name, content in files.items():
            (folder / name).write_text(content)
        found = await detect(folder)
        assert [s["stack"] for s in found["stacks"]] == [stack], found
        assert found["stacks"][0]["reference"] == f"reference/{stack}.md"
        assert (SKILL / found["stacks"][0]["reference"]).is_file()


async def test_detect_stack_in_a_monorepo_and_in_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "next.config.mjs").write_text("export default {};\n")
    (tmp_path / "api" / "src").mkdir(parents=True)
    (tmp_path / "api" / "requirements.txt").write_text("# web\nflask>=3\n")
    (tmp_path / "node_modules" / "express").mkdir(parents=True)
    (tmp_path / "node_modules" / "express" / "package.json").write_text(
        '{"dependencies": {"express": "*"}}'
    )
    found = await detect(tmp_path)
    assert [(s["stack"], s["folder"], s["evidence"]) for s in found["stacks"]] == [
        ("flask", "api", ["api/requirements.txt"]),
        ("nextjs", "web", ["web/next.config.mjs"]),
    ]
    (tmp_path / "empty").mkdir()
    assert (await detect(tmp_path / "empty"))["stacks"] == []


async def test_the_skill_detect_block_runs_as_written(tmp_path: Path) -> None:
    (block,) = of_kind("detect")
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "package.json").write_text(WORKSPACES["express"]["package.json"])
    result = await run(["bash", "-euc", block.code], cwd=workspace, env={"SKILL_DIR": str(SKILL)})
    assert result.returncode == 0, result.output
    assert [s["stack"] for s in json.loads(result.stdout)["stacks"]] == ["express"]


# ------------------------------------------------------------------ the service, by curl
async def bash(
    code: str, *, cwd: Path, env: dict[str, str], timeout_s: float = 60
) -> tuple[int, str, str]:
    """`code` in bash (errexit, pipefail), the environment plus `env`, without proxies."""
    result = await run(
        ["bash", "-euo", "pipefail", "-c", code],
        cwd=cwd,
        env={"NO_PROXY": "*", "no_proxy": "*", **env},
        timeout_s=timeout_s,
    )
    return result.returncode, result.stdout, result.stderr


async def run_shell_page(page: str, env: dict[str, str], cwd: Path) -> list[tuple[int, Any]]:
    """A page's curl steps in order, as written; each documented answer asserted."""
    variables = dict(env)
    example: str | None = None
    code: str | None = None
    last: Any = None
    answers: list[tuple[int, Any]] = []
    for block in (b for b in of_kind("shell") if b.page == page):
        for step in wt.steps(block.code):
            if (assignment := step.assignment) is not None:
                name, value = assignment
                assert wt.PLACEHOLDER in value, step.text
                prefix = value.split(wt.PLACEHOLDER)[0]
                filled = str(wt.find(last, "id"))
                assert filled.startswith(prefix), (value, last)
                variables[name] = filled
                continue
            text = step.text.replace(example, code) if example and code else step.text
            mark = "\n__status__="
            rc, out, err = await bash(f"{text} -w '{mark}%{{http_code}}'", cwd=cwd, env=variables)
            assert rc == 0, (text, err)
            raw, _, status_text = out.rpartition(mark)
            status, body = int(status_text), json.loads(raw)
            assert step.expect is not None, f"{page}: every step documents its answer: {text}"
            documented_status, fields = wt.documented_fields(step.expect)
            assert status == documented_status, (text, status, body)
            assert fields, step.expect
            for key, documented in fields:
                actual = wt.find(body, key)
                if isinstance(documented, str):
                    found = re.search(r"\b\d{6}\b", documented) if key == "body" else None
                    pattern = wt.value_pattern(documented, found.group(0) if found else "\0")
                    matched = pattern.fullmatch(str(actual))
                    assert matched, (key, documented, actual)
                    if found and matched.groupdict().get("code"):
                        example, code = found.group(0), matched["code"]
                else:
                    assert actual == documented, (key, documented, actual)
            last = body
            answers.append((status, body))
    return answers


async def test_the_api_and_webhook_pages_run_as_documented(
    service_url: str, keys: Keys, tmp_path: Path
) -> None:
    env = {"OTP_URL": service_url, "OTP_API_KEY": keys.test}
    api = await run_shell_page("reference/api.md", env, tmp_path)
    created, inbox, wrong, right, again, unauthorized = api
    assert created[0] == 201 and right[1]["status"] == "approved"
    assert right[1]["id"] == created[1]["id"] == inbox[1]["messages"][0]["verification_id"]
    assert wrong[1]["valid"] is False and again[0] == 409 and unauthorized[0] == 401

    hooks = await run_shell_page("reference/webhooks.md", env, tmp_path)
    (_, endpoint), (_, sent), (_, messages) = hooks
    assert endpoint["secret"].startswith("whsec_") and endpoint["url"].startswith(
        "http://localhost"
    )
    assert sent["message_id"] in {m["message_id"] for m in messages["messages"]}


# -------------------------------------------------------------------------- check_flow.py
async def check_flow(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = await run(
        [sys.executable, str(SCRIPTS / "check_flow.py"), *args],
        cwd=SKILL,
        env={"NO_PROXY": "*", "no_proxy": "*", **env},
    )
    return result.returncode, result.stdout, result.stderr


async def test_check_flow_passes_on_the_service_and_fails_clearly(
    service_url: str, keys: Keys
) -> None:
    rc, out, err = await check_flow({"OTP_URL": service_url, "OTP_API_KEY": keys.test})
    assert rc == 0, err
    result = json.loads(out)
    assert result["ok"] is True and result["status"] == "approved"
    assert result["verification_id"].startswith("ver_")

    rc, out, err = await check_flow({"OTP_URL": service_url, "OTP_API_KEY": "otp_test_wrong"})
    assert rc == 1 and not out
    assert "401 urn:otp:problem:unauthorized" in err
    assert "OTP_API_KEY is not accepted" in err

    rc, _, err = await check_flow({"OTP_URL": service_url, "OTP_API_KEY": keys.live})
    assert rc == 2 and "test-mode key" in err

    rc, _, err = await check_flow(
        {"OTP_URL": f"http://127.0.0.1:{free_port()}", "OTP_API_KEY": keys.test}
    )
    assert rc == 1 and "cannot reach" in err

    rc, _, err = await check_flow({"OTP_API_KEY": keys.test})
    assert rc == 2 and "set OTP_URL" in err


# ---------------------------------------------------------------- Python stacks, served
def write_blocks(stack: str, folder: Path) -> None:
    for block in of_kind(stack):
        assert block.title is not None
        target = folder / block.title
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.code)
        if target.parent != folder:
            (target.parent / "__init__.py").touch()


def import_file(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@asynccontextmanager
async def serve_asgi(app: Any, port: int) -> AsyncIterator[str]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(250):
            if server.started or task.done():
                break
            await asyncio.sleep(0.02)
        if task.done():
            task.result()
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@contextmanager
def serve_wsgi(app: Any, port: int) -> Iterator[str]:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(10)


class Service:
    """The real service, as a test-mode key sees it."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def endpoint(self, url: str) -> tuple[str, str]:
        answer = await self.http.post("/v1/webhook-endpoints", json={"url": url})
        assert answer.status_code == 201, answer.text
        return answer.json()["id"], answer.json()["secret"]

    async def code_for(self, to: str) -> tuple[str, str]:
        """The code sent to `to`, and its verification's id."""
        answer = await self.http.get("/v1/sandbox/messages", params={"to": to, "wait": 10})
        assert answer.status_code == 200, answer.text
        (message,) = answer.json()["messages"]
        match = CODE_RE.search(message["body"])
        assert match, message
        return match.group(1), message["verification_id"]

    async def delivered(self, endpoint_id: str, event_type: str, vid: str) -> dict[str, Any]:
        """The endpoint's delivery of a verification's event once it was attempted."""
        deadline = asyncio.get_running_loop().time() + 20
        while True:
            answer = await self.http.get(f"/v1/webhook-endpoints/{endpoint_id}/messages")
            assert answer.status_code == 200, answer.text
            found = [
                m
                for m in answer.json()["messages"]
                if m["event_type"] == event_type and m["verification_id"] == vid
            ]
            if found and found[0]["status"] != "pending":
                message: dict[str, Any] = found[0]
                return message
            assert asyncio.get_running_loop().time() < deadline, answer.json()
            await asyncio.sleep(0.1)


async def drive(
    service: Service,
    app_url: str,
    endpoint_id: str,
    stack: str,
    headers: Callable[[httpx.AsyncClient], Awaitable[dict[str, str]]] | None = None,
) -> None:
    """A browser's sign-in against the app; the code read from the sandbox inbox."""
    async with httpx.AsyncClient(base_url=app_url, timeout=30) as browser:
        extra = await headers(browser) if headers else {}

        async def post(path: str, body: dict[str, str]) -> httpx.Response:
            return await browser.post(path, json=body, headers=extra)

        bad = await post("/otp/send", {"to": "not an address"})
        assert bad.status_code == 400, bad.text
        none_pending = await post("/otp/verify", {"code": "123456"})
        assert (none_pending.status_code, none_pending.json()) == (400, WRONG)
        # A premium-rate number: the default risk policy refuses it (403 risk-policy), and
        # the app answers exactly as if a code were sent.
        refused = await post("/otp/send", {"to": PREMIUM_RATE})
        assert (refused.status_code, refused.json()) == (202, SENT)
        nothing = await post("/otp/verify", {"code": "123456"})
        assert (nothing.status_code, nothing.json()) == (400, WRONG)

        to = unique_email(stack)
        sent = await post("/otp/send", {"to": to})
        assert (sent.status_code, sent.json()) == (202, SENT), sent.text
        code, vid = await service.code_for(to)

        wrong = await post("/otp/verify", {"code": wrong_code(code)})
        assert (wrong.status_code, wrong.json()) == (400, WRONG)
        right = await post("/otp/verify", {"code": code})
        assert (right.status_code, right.json()) == (200, {"verified": True}), right.text
        again = await post("/otp/verify", {"code": code})
        assert (again.status_code, again.json()) == (400, WRONG)

        forged = await browser.post(
            "/otp/webhook",
            content=b'{"type": "verification.approved"}',
            headers={
                "content-type": "application/json",
                "webhook-id": "msg_forged",
                "webhook-timestamp": str(int(time.time())),
                "webhook-signature": "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            },
        )
        assert forged.status_code == 400, forged.text
        unsigned = await browser.post("/otp/webhook", json={"type": "verification.approved"})
        assert unsigned.status_code == 400

    approved = await service.delivered(endpoint_id, "verification.approved", vid)
    assert (approved["status"], approved["last_status_code"]) == ("succeeded", 204), approved


@pytest.fixture
def stack_env(monkeypatch: pytest.MonkeyPatch, service_url: str, keys: Keys) -> dict[str, str]:
    env = {"OTP_URL": service_url, "OTP_API_KEY": keys.test, "SESSION_SECRET": SESSION_SECRET}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def configure_django(folder: Path) -> None:
    """Settings in-process: signed-cookie sessions and CSRF on, as in a Django project."""
    import django  # type: ignore[import-untyped]
    from django.conf import settings  # type: ignore[import-untyped]

    sys.path.insert(0, str(folder))
    root = types.ModuleType("skill_django_urls")
    sys.modules[root.__name__] = root
    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY=SESSION_SECRET,
            ALLOWED_HOSTS=["127.0.0.1"],
            ROOT_URLCONF=root.__name__,
            INSTALLED_APPS=[],
            MIDDLEWARE=[
                "django.contrib.sessions.middleware.SessionMiddleware",
                "django.middleware.csrf.CsrfViewMiddleware",
            ],
            SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
        )
        django.setup()
    from django.http import HttpRequest, JsonResponse  # type: ignore[import-untyped]
    from django.middleware.csrf import get_token  # type: ignore[import-untyped]
    from django.urls import include, path  # type: ignore[import-untyped]

    def csrf(request: HttpRequest) -> JsonResponse:  # what the page's template would render
        return JsonResponse({"token": get_token(request)})

    root.urlpatterns = [path("", include("signin.urls")), path("csrf", csrf)]  # type: ignore[attr-defined]


async def test_python_stacks_sign_in_and_receive_webhooks(
    service_url: str,
    keys: Keys,
    stack_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with httpx.AsyncClient(
        base_url=service_url, headers=keys.test_headers, timeout=30
    ) as http:
        service = Service(http)
        premium = await http.post("/v1/verifications", json={"to": PREMIUM_RATE})
        assert premium.status_code == 403, premium.text  # the path the apps answer neutrally
        assert premium.json()["type"] == "urn:otp:problem:risk-policy"
        for stack in ("fastapi", "flask", "django"):
            folder = tmp_path / stack
            write_blocks(stack, folder)
            port = free_port()
            endpoint_id, secret = await service.endpoint(f"http://127.0.0.1:{port}/otp/webhook")
            monkeypatch.setenv("OTP_WEBHOOK_SECRET", secret)
            if stack == "fastapi":
                app = import_file("skill_fastapi_app", folder / "app.py").app
                async with serve_asgi(app, port) as url:
                    await drive(service, url, endpoint_id, stack)
                    await run_check_block({**stack_env, "APP_URL": url}, folder)
            elif stack == "flask":
                app = import_file("skill_flask_app", folder / "app.py").app
                with serve_wsgi(app, port) as url:
                    await drive(service, url, endpoint_id, stack)
                    await run_check_block({**stack_env, "APP_URL": url}, folder)
            else:
                configure_django(folder)
                from django.core.handlers.wsgi import WSGIHandler  # type: ignore[import-untyped]

                async def csrf(browser: httpx.AsyncClient) -> dict[str, str]:
                    answer = await browser.get("/csrf")
                    return {"X-CSRFToken": answer.json()["token"]}

                try:
                    with serve_wsgi(WSGIHandler(), port) as url:
                        async with httpx.AsyncClient(base_url=url) as plain:
                            without = await plain.post("/otp/send", json={"to": "a@example.com"})
                        assert without.status_code == 403  # CSRF stays on for send and verify
                        await drive(service, url, endpoint_id, stack, headers=csrf)
                finally:
                    sys.path.remove(str(folder))
                    for name in [
                        n for n in sys.modules if n == "signin" or n.startswith("signin.")
                    ]:
                        del sys.modules[name]


async def run_check_block(env: dict[str, str], workspace: Path) -> None:
    """SKILL.md's check block: the service alone, then through the app's routes."""
    (block,) = of_kind("check")
    rc, out, err = await bash(
        block.code, cwd=workspace, env={**env, "SKILL_DIR": str(SKILL)}, timeout_s=90
    )
    assert rc == 0, (out, err)
    results = [json.loads(chunk) for chunk in re.split(r"(?<=\n})\n(?=\{)", out.strip())]
    assert [r["ok"] for r in results] == [True, True], out
    assert results[0]["status"] == "approved" and results[1]["verified"] == {"verified": True}


# ------------------------------------------------------------------- Node stacks, by node
def write_node_blocks() -> Path:
    """The blocks as files under generated/ (git-ignored); tsc emits CommonJS beside them."""
    generated = NODE_DIR / "generated"
    shutil.rmtree(generated, ignore_errors=True)
    (generated / "nextjs-dist").mkdir(parents=True)
    (generated / "nextjs-dist" / "package.json").write_text('{"type": "commonjs"}\n')
    for stack in ("express", "nextjs"):
        folder = generated / stack
        for block in of_kind(stack):
            assert block.title is not None
            target = folder / block.title
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.code)
    return generated


async def test_node_stacks_type_check_and_sign_in(
    service_url: str, keys: Keys, tmp_path: Path
) -> None:
    node_executable()
    await npm_ci(NODE_DIR)
    write_node_blocks()
    tsc = await run(
        [node_executable(), "node_modules/typescript/bin/tsc", "-p", "tsconfig.json"],
        cwd=NODE_DIR,
    )
    assert tsc.returncode == 0, f"the Next.js blocks do not type-check\n{tsc.output}"
    result = await node_test(
        NODE_DIR,
        ["express.test.mjs", "nextjs.test.mjs"],
        env={
            "OTP_URL": service_url,
            "OTP_API_KEY": keys.test,
            "SESSION_SECRET": SESSION_SECRET,
            "NO_PROXY": "*",
            "no_proxy": "*",
        },
    )
    assert result.returncode == 0, result.output
    assert re.search(r"^# pass [1-9]", result.stdout, re.MULTILINE), result.output
    assert re.search(r"^# fail 0$", result.stdout, re.MULTILINE), result.output
