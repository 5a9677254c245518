"""API keys: hashed in memory, one 401 problem for every failure, mode from the key."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from api.auth import ApiKeyAuthenticator
from api.main import create_app
from otp.applications.keys import hash_api_key, new_api_key
from otp.domain import Mode
from otp.settings import ConfigError, Settings, dev_api_key
from tests.helpers.api import Keys


def _comparable(problem: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in problem.items() if k not in ("request_id",)}


async def test_missing_malformed_and_unknown_keys_get_the_same_401(
    http: httpx.AsyncClient, keys: Keys
) -> None:
    attempts = [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": f"Basic {keys.test}"},
        {"Authorization": f"Token {keys.test}"},
        {"Authorization": "Bearer otp_test_not-a-real-key"},
        {"Authorization": f"Bearer {keys.test}x"},
        {"Authorization": f"Bearer {hash_api_key(keys.test)}"},  # the hash is not the key
    ]
    bodies = []
    for headers in attempts:
        response = await http.get(
            "/v1/verifications/ver_abcdefghijklmnopqrstuvwxyz", headers=headers
        )
        assert response.status_code == 401, (headers, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert keys.test not in response.text
        bodies.append(_comparable(response.json()))
    assert all(body == bodies[0] for body in bodies)
    assert bodies[0]["type"] == "urn:otp:problem:unauthorized"
    assert bodies[0]["status"] == 401


async def test_every_configured_key_form_authenticates_with_its_mode(
    http: httpx.AsyncClient, keys: Keys
) -> None:
    # Sandbox access tells the modes apart: test keys read it, live keys get 403.
    for key, expected in ((keys.test, 200), (keys.test_hashed, 200), (keys.live, 403)):
        response = await http.get("/v1/sandbox/messages", headers=keys.auth(key))
        assert response.status_code == expected, response.text


def _settings(tmp_path: Path, **kwargs: object) -> Settings:
    return Settings(data_dir=tmp_path, **kwargs)  # type: ignore[arg-type]


def test_authenticator_keeps_only_hashes_and_takes_mode_from_prefix(tmp_path: Path) -> None:
    test_key, live_key = new_api_key(Mode.TEST), new_api_key(Mode.LIVE)
    auth = ApiKeyAuthenticator.from_settings(
        _settings(tmp_path, env="production", api_keys=SecretStr(f"{test_key}, {live_key}"))
    )
    assert test_key not in repr(vars(auth)) and live_key not in repr(vars(auth))
    principal = auth.authenticate(test_key)
    assert principal is not None and principal.mode is Mode.TEST
    assert principal.application_id == "default"
    principal = auth.authenticate(live_key)
    assert principal is not None and principal.mode is Mode.LIVE
    assert auth.authenticate(None) is None
    assert auth.authenticate("") is None


def test_declared_mode_must_match_the_key_prefix(tmp_path: Path) -> None:
    # A test key configured as a live hash is refused rather than silently used as live.
    test_key = new_api_key(Mode.TEST)
    auth = ApiKeyAuthenticator.from_settings(
        _settings(
            tmp_path, env="production", api_keys=SecretStr(f"sha256:live:{hash_api_key(test_key)}")
        )
    )
    assert auth.authenticate(test_key) is None


def test_dev_key_is_accepted_only_in_dev(tmp_path: Path) -> None:
    dev = _settings(tmp_path, env="dev")
    key = dev_api_key(dev)
    principal = ApiKeyAuthenticator.from_settings(dev).authenticate(key)
    assert principal is not None and principal.mode is Mode.TEST
    production = _settings(tmp_path, env="production", api_keys=SecretStr(new_api_key(Mode.LIVE)))
    assert ApiKeyAuthenticator.from_settings(production).authenticate(key) is None


@pytest.mark.parametrize(
    "entry",
    ["not-a-key", "sha256:test:nothex", "sha256:prod:" + "a" * 64, "sha256:a:b:c", "otp_beta_xyz"],
)
def test_malformed_key_entries_fail_at_startup_without_echoing_them(
    tmp_path: Path, entry: str
) -> None:
    settings = _settings(tmp_path, env="production", api_keys=SecretStr(f"otp_test_ok123,{entry}"))
    with pytest.raises(ConfigError) as info:
        ApiKeyAuthenticator.from_settings(settings)
    assert "entry 2" in str(info.value)
    assert entry not in str(info.value)


async def test_create_app_refuses_a_bad_key_configuration(tmp_path: Path) -> None:
    settings = _settings(tmp_path, env="dev", api_keys=SecretStr("garbage"))
    with pytest.raises(ConfigError):
        create_app(settings)
