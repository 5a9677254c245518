"""The documentation site: it builds strictly, and its configuration reference is complete.

The configuration page is generated at build time from `otp.settings.Settings` by the
hook in docs/hooks/settings_reference.py, so every field needs a description, and the
table must never show a secret's default value.
"""

from __future__ import annotations

import html
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from pydantic import BaseModel, Field, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

from otp.settings import Settings
from tests.docs import walkthrough as wt

ROOT = Path(__file__).resolve().parents[2]
HOOK = ROOT / "docs" / "hooks" / "settings_reference.py"
BUILD_TIMEOUT_S = 180


def load_hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("settings_reference", HOOK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def all_fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, FieldInfo]]:
    """Every field of a settings model, nested models included, by dotted name."""
    found: list[tuple[str, FieldInfo]] = []
    for name, info in model.model_fields.items():
        nested = [
            arg
            for arg in (info.annotation, *getattr(info.annotation, "__args__", ()))
            if isinstance(arg, type) and issubclass(arg, BaseModel)
        ]
        found.append((prefix + name, info))
        for sub in nested:
            found.extend(all_fields(sub, f"{prefix}{name}."))
    return found


def page_text(site: Path, page: str) -> str:
    """The visible text of a built page (tags dropped, entities decoded)."""
    raw = (site / page / "index.html").read_text()
    return html.unescape(re.sub(r"<[^>]+>", "", raw))


def test_every_setting_has_a_description() -> None:
    fields = all_fields(Settings)
    assert len(fields) > 50
    missing = [name for name, info in fields if not (info.description or "").strip()]
    assert missing == [], f"Settings fields without Field(description=...): {missing}"


def test_the_reference_lists_every_setting_and_no_secret_value() -> None:
    hook = load_hook()

    class Nested(BaseModel):
        token: SecretStr = Field(default=SecretStr("nested-secret-value"), description="A.")
        depth: int = Field(default=3, ge=1, le=9, description="B.")

    class Example(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="EX_")

        password: SecretStr = Field(default=SecretStr("top-secret-value"), description="C.")
        mode: str = Field(default="a|b", description="Pipes <kept> in one cell.")
        inner: Nested = Field(default_factory=Nested, description="D.")
        strict: bool = Field(default=False, description="E.")

    rows = {row[0]: row for row in hook.rows(Example, "EX_")}
    assert set(rows) == {
        "EX_PASSWORD",
        "EX_MODE",
        "EX_INNER__TOKEN",
        "EX_INNER__DEPTH",
        "EX_STRICT",
    }
    assert rows["EX_PASSWORD"][1:3] == ("secret", "(secret, not shown)")
    assert rows["EX_INNER__TOKEN"][2] == "(secret, not shown)"
    assert rows["EX_INNER__DEPTH"][1:3] == ("int, 1..9", "`3`")
    assert rows["EX_STRICT"][1:3] == ("bool", "`false`")

    table = hook.settings_table()
    lines = table.splitlines()
    assert len(lines) == 2 + len(Settings.model_fields)
    for name, info in Settings.model_fields.items():
        row = next(line for line in lines if line.startswith(f"| `OTP_{name.upper()}` |"))
        cells = re.split(r"(?<!\\)\|", row.strip().strip("|"))
        assert len(cells) == 4, row  # no stray pipe split a cell
        if "SecretStr" in str(info.annotation):
            assert cells[1].strip().startswith("secret"), row
            assert cells[2].strip() in {"unset", "(secret, not shown)"}, row
    page = (ROOT / "docs" / "operations" / "configuration.md").read_text()
    assert hook.MARKER in page
    assert hook.on_page_markdown(page).count("| `OTP_") == len(Settings.model_fields)


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTP_")}
    env["NO_MKDOCS_2_WARNING"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    pages = list(site.rglob("index.html"))
    assert len(pages) >= 12, pages

    # The generated reference replaced its marker, one row per setting.
    configuration = page_text(site, "operations/configuration")
    assert "settings-reference" not in configuration
    for name in Settings.model_fields:
        assert f"OTP_{name.upper()}" in configuration, name

    # The getting-started page shows the README's walk-through, command for command.
    started = page_text(site, "getting-started")
    block = wt.shell_block(wt.section(wt.README.read_text()))
    for step in wt.steps(block):
        for line in step.text.splitlines():
            assert line.strip() in started, line
