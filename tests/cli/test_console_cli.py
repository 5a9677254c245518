"""`otp console add-user` and the dev stack's first console admin, against a real store."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

from api.console.services import auth
from cli.console import ensure_dev_admin
from otp.risk.limits.factory import build_limiter
from otp.settings import Settings
from otp.store import Store
from otp.store.console import list_users
from tests.helpers.cli import otp


async def _signs_in(settings: Settings, username: str, password: str) -> bool:
    store = Store(settings.store_url)
    try:
        limiter = build_limiter(settings, store)
        signed = await auth.sign_in(
            store, limiter, settings, b"k" * 32, username=username, password=password, address="::1"
        )
        return signed is not None
    finally:
        await store.close()


async def test_add_user_prints_a_password_that_signs_in(
    otp_env: dict[str, str], tmp_path: Path
) -> None:
    added = await otp(otp_env, "console", "add-user", "Grace", "--role", "support")
    assert added.returncode == 0, added.stderr
    assert "Console user grace (support) added." in added.stdout
    password = added.stdout.split("Password: ", 1)[1].strip()
    settings = Settings(data_dir=tmp_path / "data")
    assert await _signs_in(settings, "grace", password)
    assert not await _signs_in(settings, "grace", password + "x")

    again = await otp(otp_env, "console", "add-user", "grace", "--role", "admin")
    assert again.returncode == 2
    assert "exists already" in again.stderr
    bad_role = await otp(otp_env, "console", "add-user", "x1", "--role", "root")
    assert bad_role.returncode == 2


def test_the_dev_stack_creates_one_admin_with_a_private_password_file(tmp_path: Path) -> None:
    """Sync: `otp dev` calls it before any event loop runs."""
    settings = Settings(env="dev", data_dir=tmp_path / "data")
    user, path = ensure_dev_admin(settings)
    assert user == "admin"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_dev_admin(settings) == (user, path)  # a second run adds nobody

    async def check() -> None:
        store = Store(settings.store_url)
        try:
            users = await list_users(store)
        finally:
            await store.close()
        assert [(u.username, u.role) for u in users] == [("admin", "admin")]
        assert await _signs_in(settings, "admin", path.read_text().strip())

    asyncio.run(check())
