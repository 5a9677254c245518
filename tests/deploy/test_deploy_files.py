"""docker-compose.yml, Dockerfile and .env.example are consistent with the code.

No container engine runs here, so these are static checks: the topology, the
healthchecks, no literal secrets, and every OTP_ variable known to Settings.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest
import yaml

from otp.settings import Settings
from tests.helpers.cli import ROOT

SERVICES = {"postgresql", "temporal", "temporal-setup", "temporal-ui", "api", "worker"}
ONE_SHOT = {"temporal-setup"}
SECRET_NAME = re.compile(r"SECRET|PASSWORD|PWD|KEYS?$|TOKEN")
REQUIRED_REF = re.compile(r"^\$\{(\w+):\?[^}]*\}$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def test_services_and_healthchecks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        if name not in ONE_SHOT:
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert services["api"]["command"] == ["api"]
    assert services["worker"]["command"] == ["worker"]
    assert services["temporal"]["image"].startswith("temporalio/auto-setup:")
    assert services["temporal-ui"]["image"].startswith("temporalio/ui:")
    assert services["temporal"]["environment"]["POSTGRES_SEEDS"] == "postgresql"


def test_worker_scales(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker


def test_apps_wait_for_their_dependencies(compose: dict[str, Any]) -> None:
    for name in ("api", "worker"):
        depends = compose["services"][name]["depends_on"]
        assert depends["postgresql"]["condition"] == "service_healthy"
        assert depends["temporal-setup"]["condition"] == "service_completed_successfully"
    setup = compose["services"]["temporal-setup"]
    assert setup["command"] == ["temporal-setup"]
    assert setup["depends_on"]["temporal"]["condition"] == "service_healthy"


def test_production_settings(compose: dict[str, Any]) -> None:
    for name in ("api", "worker", "temporal-setup"):
        env = env_of(compose["services"][name])
        assert env["OTP_ENV"] == "production", name
        assert env["OTP_TEMPORAL_ADDRESS"] == "temporal:7233", name
    for name in ("api", "worker"):
        env = env_of(compose["services"][name])
        assert env["OTP_DATABASE_URL"].startswith("postgresql+asyncpg://"), name
        assert "@postgresql:5432/" in env["OTP_DATABASE_URL"]


OPTIONAL_SECRETS = {"OTP_API_KEYS", "OTP_ADMIN_TOKEN", "OTP_CODEC_TOKEN"}


def test_no_literal_or_default_secrets(compose: dict[str, Any]) -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    defaulted = re.findall(r"\$\{(\w+):?-", text)
    assert not [name for name in defaulted if SECRET_NAME.search(name)], defaulted
    for name, service in compose["services"].items():
        for key, value in env_of(service).items():
            if key in OPTIONAL_SECRETS:  # empty turns the feature off; never a default value
                assert value == f"${{{key}}}", f"{name}.{key} must be ${{{key}}}"
            elif SECRET_NAME.search(key):
                assert REQUIRED_REF.match(value), f"{name}.{key} must be ${{{key}:?...}}"
    for name in ("api", "worker"):
        url = env_of(compose["services"][name])["OTP_DATABASE_URL"]
        assert ":${POSTGRES_PASSWORD:?" in url


def test_every_otp_variable_is_a_setting(compose: dict[str, Any]) -> None:
    known = {f"OTP_{field.upper()}" for field in Settings.model_fields}
    used = {
        key
        for service in compose["services"].values()
        for key in env_of(service)
        if key.startswith("OTP_")
    }
    assert used, "no OTP_ variables found"
    assert used <= known, sorted(used - known)
    # Compose-only knobs (image tag, published port) do not wear the OTP_ prefix.
    referenced = set(re.findall(r"\$\{(OTP_\w+)", (ROOT / "docker-compose.yml").read_text()))
    assert referenced <= known, sorted(referenced - known)


def test_env_example_lists_every_required_variable() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{(\w+):\?", text))
    example = (ROOT / ".env.example").read_text()
    assigned = dict(
        line.split("=", 1) for line in example.splitlines() if line and not line.startswith("#")
    )
    assert required <= set(assigned), sorted(required - set(assigned))
    assert all(value == "" for value in assigned.values()), "no secret values in .env.example"
    known = {f"OTP_{field.upper()}" for field in Settings.model_fields}
    mentioned = set(re.findall(r"\b(OTP_[A-Z_]+)=", example))
    assert mentioned <= known, sorted(mentioned - known)


def test_dockerfile_installs_the_lock_and_runs_unprivileged() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert "pip install --require-hashes -r /tmp/requirements.lock" in text
    assert re.search(r"^USER (?!root)\w+", text, re.M)
    assert 'ENTRYPOINT ["otp"]' in text
    assert "OTP_ENV=production" in text
    # Every package the project ships is copied into the image.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = pyproject["tool"]["setuptools"]
    shipped = [p.rstrip("*") for p in setuptools["packages"]["find"]["include"]]
    shipped += [f"{m}.py" for m in setuptools["py-modules"]]
    for item in shipped:
        assert re.search(rf"^COPY {re.escape(item)} ", text, re.M), f"{item} not copied"


def test_dockerignore_keeps_local_state_out() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", ".data", ".env", ".git"} <= ignored
