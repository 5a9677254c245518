"""MkDocs hook: render the configuration reference from `otp.settings.Settings`.

Every field of `Settings` (and of any settings model nested in it) becomes one row of a
table: the environment variable (`OTP_` prefix), its type and bounds, its default and its
description. The table replaces the marker below wherever a page holds it. Defaults of
secret fields are never rendered as values.
"""

from __future__ import annotations

import enum
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

MARKER = "<!-- settings-reference -->"

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `mkdocs serve` from the console script
    sys.path.insert(0, str(ROOT))


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in typing.get_args(annotation)


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _type_name(annotation: Any) -> str:
    """A reader's name for a field's type: `int`, `dev | production`, `secret`, `path`."""
    if annotation is type(None):
        return "unset"
    if annotation is SecretStr:
        return "secret"
    if annotation is Path:
        return "path"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " | ".join(str(member.value) for member in annotation)
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " | ".join(str(value) for value in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(arg) for arg in typing.get_args(annotation)]
        unset = "unset" in names
        names = [name for name in names if name != "unset"]
        return " | ".join(names) + (" (optional)" if unset else "")
    return getattr(annotation, "__name__", str(annotation))


def _bounds(info: FieldInfo) -> str:
    """`1..20`, `>= 0`, `> 0` from the field's numeric constraints."""
    found: dict[str, Any] = {}
    for item in info.metadata:
        for name in ("ge", "gt", "le", "lt"):
            value = getattr(item, name, None)
            if value is not None:
                found[name] = value
    low = ("ge", found["ge"]) if "ge" in found else ("gt", found["gt"]) if "gt" in found else None
    high = ("le", found["le"]) if "le" in found else ("lt", found["lt"]) if "lt" in found else None
    if low and high and low[0] == "ge" and high[0] == "le":
        return f"{low[1]}..{high[1]}"
    symbols = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    return ", ".join(f"{symbols[bound[0]]} {bound[1]}" for bound in (low, high) if bound)


def _default(info: FieldInfo, secret: bool) -> str:
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if secret:
        return "(secret, not shown)"
    if isinstance(value, bool):  # as the environment spells it
        value = str(value).lower()
    elif isinstance(value, enum.Enum):
        value = value.value
    if value == "":
        return "empty"
    return f"`{value}`"


def _cell(text: str) -> str:
    """Text safe in a Markdown table cell (no column breaks, tags or emphasis)."""
    for raw, escaped in (("|", "\\|"), ("<", "&lt;"), (">", "&gt;"), ("*", "\\*")):
        text = text.replace(raw, escaped)
    return text.replace("\n", " ")


def rows(
    model: type[BaseModel], prefix: str, delimiter: str = "__"
) -> list[tuple[str, str, str, str]]:
    """(variable, type, default, description) for every field of `model`, recursively."""
    found: list[tuple[str, str, str, str]] = []
    for name, info in model.model_fields.items():
        variable = f"{prefix}{name}".upper()
        nested = _nested_model(info.annotation)
        if nested is not None:
            found.extend(rows(nested, f"{variable}{delimiter}"))
            continue
        secret = _is_secret(info.annotation)
        kind = _type_name(info.annotation)
        bounds = _bounds(info)
        found.append(
            (
                variable,
                f"{kind}, {bounds}" if bounds else kind,
                _default(info, secret),
                info.description or "",
            )
        )
    return found


def settings_table() -> str:
    """The configuration reference as a Markdown table."""
    from otp.settings import Settings

    prefix = str(Settings.model_config.get("env_prefix", ""))
    delimiter = str(Settings.model_config.get("env_nested_delimiter") or "__")
    lines = ["| variable | type | default | description |", "| --- | --- | --- | --- |"]
    for variable, kind, default, description in rows(Settings, prefix, delimiter):
        lines.append(f"| `{variable}` | {_cell(kind)} | {default} | {_cell(description)} |")
    return "\n".join(lines)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Put the settings table in place of the marker."""
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, settings_table())
