"""Run time needs no training dependency: every user command works with librosa unimportable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import DaemonProcess, MpdServer, add_song, run_cli, write_config


@pytest.fixture
def without_librosa(tmp_path: Path, queue_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
                    ) -> dict[str, str]:
    """``queue_env`` with a ``librosa`` package first on the path that refuses to import."""
    blocker = tmp_path / "blocked" / "librosa"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text('raise ImportError("librosa is for training only")\n')
    path = os.pathsep.join([str(blocker.parent), queue_env["PYTHONPATH"]])
    monkeypatch.setenv("PYTHONPATH", path)
    return {**queue_env, "PYTHONPATH": path}


def test_user_commands_need_no_librosa(without_librosa: dict[str, str], mpd_server: MpdServer,
                                       tmp_path: Path) -> None:
    song = add_song(mpd_server.music, "a.ogg", "Ann", seconds=3)
    mpd_server.update()
    probe = subprocess.run([sys.executable, "-c", "import librosa"], capture_output=True, text=True,
                           env={**os.environ, **without_librosa})
    assert "librosa is for training only" in probe.stderr  # the blocker is in place
    for args in (["--help"], ["analyze", str(song)], ["scan", str(mpd_server.music)], ["status"],
                 ["show", str(song)], ["next", "--dry-run"]):
        result = run_cli(*args, env=without_librosa)
        assert result.returncode == 0, (args, result.stderr)
    daemon = DaemonProcess(tmp_path, write_config(tmp_path))
    try:
        daemon.ready()
    finally:
        daemon.close()
