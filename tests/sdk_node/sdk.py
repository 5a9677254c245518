"""The Node SDK folder, installed from its lock and built, for the tests that run it."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.node import ROOT, npm_ci, run

SDK = ROOT / "sdk-node"
_INPUTS = ("src", "scripts/build.mjs", "tsconfig.json", "tsconfig.cjs.json", "package-lock.json")
_OUTPUTS = ("dist/esm/index.js", "dist/cjs/index.js", "dist/cjs/package.json")


def _newest(path: Path) -> float:
    if path.is_dir():
        return max((_newest(child) for child in path.iterdir()), default=0.0)
    return path.stat().st_mtime


def _built() -> bool:
    outputs = [SDK / name for name in _OUTPUTS]
    if not all(path.is_file() for path in outputs):
        return False
    return min(p.stat().st_mtime for p in outputs) >= max(_newest(SDK / n) for n in _INPUTS)


async def built_sdk() -> Path:
    """`sdk-node/` with its locked packages and a `dist/` built from the current sources."""
    await npm_ci(SDK)
    if not _built():
        result = await run(["npm", "run", "--silent", "build"], cwd=SDK)
        assert result.returncode == 0, f"the Node SDK does not build\n{result.output}"
    return SDK
