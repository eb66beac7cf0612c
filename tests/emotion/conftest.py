"""Fixtures of the emotion tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _no_user_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests see the default settings, not the user's config file or environment."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    for name in ("QUEUEEMO_CONFIG", "QUEUEEMO_DB", "QUEUEEMO_EMOTION_MODEL"):
        monkeypatch.delenv(name, raising=False)
