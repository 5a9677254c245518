"""The /codec endpoints: auth, CORS for the UI, and the `temporal` CLI decoding a real history."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from otp.security.codec import codec_from_secrets
from otp.settings import Secrets, Settings
from otp.store import Store
from tests.helpers.api import Keys
from tests.helpers.serving import served as serve_app

TOKEN = "codec-token-for-the-tests-0123456789"
PHONE = "+14155550166"


def _json_payload(payload: Payload) -> dict[str, Any]:
    return {
        "metadata": {k: base64.b64encode(v).decode() for k, v in payload.metadata.items()},
        "data": base64.b64encode(payload.data).decode(),
    }


def _encrypted(secrets: Secrets, text: str) -> dict[str, Any]:
    plain = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(text).encode())
    return _json_payload(codec_from_secrets(secrets).encode_one(plain))


def _client(app: Any, host: str = "127.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(host, 40000)), base_url="http://api.test"
    )


async def test_decode_and_encode_round_trip_with_the_token(
    api_settings: Settings, secrets: Secrets, store: Store
) -> None:
    settings = api_settings.model_copy(update={"codec_token": SecretStr(TOKEN)})
    app = create_app(settings, client=None, store=store, secrets=secrets)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with _client(app, host="10.1.2.3") as http:
        body = {"payloads": [_encrypted(secrets, PHONE)]}
        decoded = await http.post("/codec/decode", json=body, headers=auth)
        assert decoded.status_code == 200, decoded.text
        (payload,) = decoded.json()["payloads"]
        assert base64.b64decode(payload["data"]) == json.dumps(PHONE).encode()
        assert base64.b64decode(payload["metadata"]["encoding"]) == b"json/plain"

        encoded = await http.post("/codec/encode", json={"payloads": [payload]}, headers=auth)
        (sealed,) = encoded.json()["payloads"]
        assert base64.b64decode(sealed["metadata"]["encoding"]) == b"binary/encrypted"
        assert PHONE.encode() not in base64.b64decode(sealed["data"])
        again = await http.post("/codec/decode", json={"payloads": [sealed]}, headers=auth)
        assert again.json()["payloads"][0]["data"] == payload["data"]

        for headers in ({}, {"Authorization": f"Bearer {TOKEN}x"}):
            refused = await http.post("/codec/decode", json=body, headers=headers)
            assert refused.status_code == 403
            assert refused.headers["content-type"] == "application/problem+json"
            assert PHONE not in refused.text
        bad = await http.post("/codec/decode", content=b"not json", headers=auth)
        assert bad.status_code == 422


async def test_without_a_token_dev_serves_this_machine_only_and_production_nobody(
    api_settings: Settings, secrets: Secrets, store: Store
) -> None:
    body = {"payloads": [_encrypted(secrets, PHONE)]}
    app = create_app(api_settings, client=None, store=store, secrets=secrets)
    async with _client(app) as local, _client(app, host="192.0.2.7") as remote:
        assert (await local.post("/codec/decode", json=body)).status_code == 200
        assert (await remote.post("/codec/decode", json=body)).status_code == 403
    production = create_app(
        api_settings.model_copy(update={"env": "production"}),
        client=None,
        store=store,
        secrets=secrets,
    )
    async with _client(production) as local:
        assert (await local.post("/codec/decode", json=body)).status_code == 404


async def test_cors_preflight_allows_exactly_the_ui_origin(
    api_settings: Settings, secrets: Secrets, store: Store
) -> None:
    app = create_app(api_settings, client=None, store=store, secrets=secrets)
    ui = f"http://localhost:{api_settings.temporal_ui_port}"
    async with _client(app) as http:
        ok = await http.options(
            "/codec/decode",
            headers={
                "Origin": ui,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-namespace",
            },
        )
        assert ok.status_code == 204
        assert ok.headers["access-control-allow-origin"] == ui
        assert "POST" in ok.headers["access-control-allow-methods"]
        assert "x-namespace" in ok.headers["access-control-allow-headers"]
        other = await http.options(
            "/codec/decode",
            headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert other.status_code == 403
        assert "access-control-allow-origin" not in other.headers
        posted = await http.post(
            "/codec/decode",
            json={"payloads": [_encrypted(secrets, PHONE)]},
            headers={"Origin": ui},
        )
        assert posted.headers["access-control-allow-origin"] == ui


@pytest.fixture
async def served(
    api_settings: Settings, dev_env: WorkflowEnvironment, store: Store, secrets: Secrets
) -> AsyncIterator[str]:
    settings = api_settings.model_copy(update={"codec_token": SecretStr(TOKEN)})
    async with serve_app(
        create_app(settings, client=dev_env.client, store=store, secrets=secrets)
    ) as url:
        yield url


def _payload_texts(history_json: str) -> str:
    """Every payload's data in a `temporal workflow show -o json` history, decoded from base64."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "metadata" in node and "data" in node and isinstance(node["data"], str):
                found.append(base64.b64decode(node["data"]).decode("utf-8", "replace"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(history_json))
    return "\n".join(found)


def _temporal(target: str, workflow_id: str, *extra: str) -> str:
    binary = Path(sys.executable).parent / "temporal"
    done = subprocess.run(
        [
            str(binary),
            "workflow",
            "show",
            "--address",
            target,
            "--workflow-id",
            workflow_id,
            "--output",
            "json",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_the_temporal_cli_decodes_a_real_history_through_the_codec(
    served: str, dev_env: WorkflowEnvironment, keys: Keys, worker: None
) -> None:
    async with httpx.AsyncClient(base_url=served, headers=keys.test_headers) as http:
        created = await http.post("/v1/verifications", json={"to": PHONE})
        assert created.status_code == 201, created.text
        vid = created.json()["id"]
    target = dev_env.client.service_client.config.target_host
    raw = await asyncio.to_thread(_temporal, target, vid)
    assert "YmluYXJ5L2VuY3J5cHRlZA==" in raw  # base64 of binary/encrypted
    assert PHONE not in raw and PHONE not in _payload_texts(raw)
    decoded = await asyncio.to_thread(
        _temporal,
        target,
        vid,
        "--codec-endpoint",
        f"{served}/codec",
        "--codec-auth",
        f"Bearer {TOKEN}",
    )
    assert PHONE in _payload_texts(decoded)
    assert "YmluYXJ5L2VuY3J5cHRlZA==" not in decoded
