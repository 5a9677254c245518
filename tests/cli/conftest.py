"""Fixtures of the command-line tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.cli import clean_env


@pytest.fixture
def otp_env(tmp_path: Path) -> dict[str, str]:
    """An environment without OTP_* variables, with a data directory of the test's own."""
    return clean_env(OTP_DATA_DIR=str(tmp_path / "data"))
