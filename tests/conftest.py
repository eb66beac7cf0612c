"""Shared fixtures: real audio files in tmp_path, the shared data folder, ffmpeg availability."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from audiofiles import synth, write_audio
from pg import PostgresServer, PostgresUnavailable

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def _no_user_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test sees the default settings, not the user's config file, database or environment
    (a test that needs a setting sets it after this)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    for name in ("QUEUEEMO_CONFIG", "QUEUEEMO_DB", "QUEUEEMO_EMOTION_MODEL", "QUEUEEMO_LIBRARY_JOBS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def make_audio(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``make_audio("a.mp3", seconds=3, freq=220)`` writes a real file under tmp_path."""

    def make(name: str, seconds: float = 3.0, *, sr: int = 44_100, channels: int = 1, **kw) -> Path:
        return write_audio(tmp_path / name, synth(seconds, sr=sr, **kw), sr=sr, channels=channels)

    return make


@pytest.fixture
def shared_data() -> Path:
    """The training data beside the checkout; tests that use it are skipped when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA



@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the whole session (skips only when it cannot be started)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install '.[postgres]')")
    try:
        server = PostgresServer.start()
    except PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server: {exc}")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def clip_model() -> str:
    """The shipped clip model's version; tests that analyse audio are skipped until weights exist."""
    from queueemo.errors import ModelError
    from queueemo.library.analysis import current_model_version

    try:
        return current_model_version()
    except ModelError as exc:
        pytest.skip(f"clip weights not available: {exc}")
