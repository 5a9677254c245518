"""Secrets: generated once in dev, required in production, validated."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from otp.settings import ConfigError, Settings, load_secrets

KEY_A = base64.b64encode(b"a" * 32).decode()
KEY_B = base64.b64encode(b"b" * 32).decode()


def test_dev_generates_secrets_once_with_private_permissions(tmp_path: Path) -> None:
    settings = Settings(env="dev", data_dir=tmp_path / "data")
    first = load_secrets(settings)
    path = tmp_path / "data" / "secrets.json"
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first.code_secret) >= 16
    assert first.codec_write_key_id in first.codec_keys
    assert all(len(k) == 32 for k in first.codec_keys.values())

    stored = path.read_text()
    again = load_secrets(Settings(env="dev", data_dir=tmp_path / "data"))
    assert again == first
    assert path.read_text() == stored

    elsewhere = load_secrets(Settings(env="dev", data_dir=tmp_path / "other"))
    assert elsewhere.code_secret != first.code_secret


def test_dev_environment_values_win_over_generated_ones(tmp_path: Path) -> None:
    settings = Settings(
        env="dev", data_dir=tmp_path, code_secret=SecretStr("s" * 20), codec_keys=None
    )
    secrets = load_secrets(settings)
    assert secrets.code_secret == b"s" * 20
    assert json.loads((tmp_path / "secrets.json").read_text())["codec_keys"].startswith("dev1:")


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({}, ["OTP_CODE_SECRET", "OTP_CODEC_KEYS"]),
        ({"OTP_CODE_SECRET": "s" * 32}, ["OTP_CODEC_KEYS"]),
        ({"OTP_CODEC_KEYS": f"k1:{KEY_A}"}, ["OTP_CODE_SECRET"]),
    ],
)
def test_production_requires_secrets_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], missing: list[str]
) -> None:
    monkeypatch.setenv("OTP_ENV", "production")
    monkeypatch.setenv("OTP_DATA_DIR", str(tmp_path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_secrets(Settings())
    for name in missing:
        assert name in str(info.value)
    for name in {"OTP_CODE_SECRET", "OTP_CODEC_KEYS"} - set(missing):
        assert name not in str(info.value)
    assert not (tmp_path / "secrets.json").exists()  # nothing generated outside dev


def test_production_reads_rotated_keys_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTP_ENV", "production")
    monkeypatch.setenv("OTP_CODE_SECRET", "p" * 32)
    monkeypatch.setenv("OTP_CODEC_KEYS", f"k2:{KEY_B}, k1:{KEY_A}")
    secrets = load_secrets(Settings(data_dir=tmp_path))
    assert secrets.code_secret == b"p" * 32
    assert secrets.codec_write_key_id == "k2"  # the first one encrypts
    assert secrets.codec_keys == {"k2": b"b" * 32, "k1": b"a" * 32}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "OTP_CODEC_KEYS must be set"),  # an empty value counts as unset
        (" , ", "empty"),
        (KEY_A, "key_id:base64key"),
        (f":{KEY_A}", "key_id:base64key"),
        ("k1:not*base64", "not valid base64"),
        (f"k1:{base64.b64encode(b'short').decode()}", "32 bytes"),
    ],
)
def test_bad_codec_keys_are_rejected(tmp_path: Path, raw: str, message: str) -> None:
    settings = Settings(
        env="production",
        data_dir=tmp_path,
        code_secret=SecretStr("s" * 32),
        codec_keys=SecretStr(raw),
    )
    with pytest.raises(ConfigError, match=message) as info:
        load_secrets(settings)
    assert KEY_A not in str(info.value)


def test_short_code_secret_is_rejected(tmp_path: Path) -> None:
    settings = Settings(
        env="production",
        data_dir=tmp_path,
        code_secret=SecretStr("short"),
        codec_keys=SecretStr(f"k1:{KEY_A}"),
    )
    with pytest.raises(ConfigError, match="OTP_CODE_SECRET"):
        load_secrets(settings)


def test_secret_files_fill_settings_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from otp.settings import load_settings

    (tmp_path / "otp_twilio_auth_token").write_text("from-file\n")
    (tmp_path / "otp_meta_app_secret").write_text("meta-file")
    monkeypatch.setenv("OTP_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("OTP_META_APP_SECRET", "meta-env")
    settings = load_settings()
    assert settings.twilio_auth_token is not None
    assert settings.twilio_auth_token.get_secret_value() == "from-file"
    assert settings.meta_app_secret is not None
    assert settings.meta_app_secret.get_secret_value() == "meta-env"
    assert "from-file" not in repr(settings)


def test_a_missing_secrets_dir_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from otp.settings import load_settings

    monkeypatch.setenv("OTP_SECRETS_DIR", str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="OTP_SECRETS_DIR"):
        load_settings()


def test_unknown_or_mismatched_provider_names_are_refused_at_startup() -> None:
    with pytest.raises(ValueError, match="unknown whatsapp provider 'meta'"):
        Settings(whatsapp_providers="meta")
    with pytest.raises(ValueError, match="unknown sms provider 'smtp'"):
        Settings(sms_providers="twilio,smtp")
    assert Settings(sms_providers="http_gateway, twilio").sms_providers == "http_gateway, twilio"


async def test_concurrent_table_creation_on_a_fresh_database(tmp_path: Path) -> None:
    """The API and the worker both create the tables at start; neither may crash."""
    import asyncio

    from otp.store import Store

    stores = [Store(f"sqlite+aiosqlite:///{tmp_path / 'otp.db'}") for _ in range(4)]
    try:
        await asyncio.gather(*(s.create_all() for s in stores))
        assert await stores[0].list_sandbox_messages(application_id="a") == []
    finally:
        for s in stores:
            await s.close()
