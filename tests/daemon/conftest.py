"""A real MPD for the queue tests: generated config, null audio output, short generated tracks.

The index is written directly through the library API with trajectories the tests choose, so the
expected pick is known without trusting the clip model; the forecast is the real model's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mpd
import numpy as np
import pytest
from audiofiles import synth, write_audio
from mutagen.oggvorbis import OggVorbis

MPD_BINARY = shutil.which("mpd") or ("/usr/bin/mpd" if os.path.exists("/usr/bin/mpd") else None)
REPO = Path(__file__).resolve().parents[2]



def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that start MPD carry the ``mpd`` mark, so ``-m "not mpd"`` leaves them out."""
    for item in items:
        if "mpd_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.mpd)


def wait_for(condition, timeout: float = 10.0, step: float = 0.05, what: str = "condition"):
    """Poll ``condition`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class MpdServer:
    """One ``mpd --no-daemon`` with everything under a temp folder."""

    root: Path
    process: subprocess.Popen | None = None

    @property
    def music(self) -> Path:
        return self.root / "music"

    @property
    def socket(self) -> str:
        return str(self.root / "mpd.sock")

    def write_config(self) -> Path:
        conf = self.root / "mpd.conf"
        conf.write_text(
            f'music_directory "{self.music}"\n'
            f'db_file "{self.root / "mpd.db"}"\n'
            f'state_file "{self.root / "mpd.state"}"\n'
            f'pid_file "{self.root / "mpd.pid"}"\n'
            f'bind_to_address "{self.socket}"\n'
            'audio_output {\n  type "null"\n  name "null"\n}\n',
            encoding="utf-8",
        )
        return conf

    def start(self) -> None:
        log = (self.root / "mpd.log").open("ab")
        self.process = subprocess.Popen(
            [MPD_BINARY, "--no-daemon", str(self.write_config())], stdout=log, stderr=log,
        )
        wait_for(self._answers, what="mpd to accept connections")

    def _answers(self) -> bool:
        with contextlib.suppress(OSError, mpd.MPDError), self.client():
            return True
        return False

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    @contextlib.contextmanager
    def client(self) -> Iterator[mpd.MPDClient]:
        client = mpd.MPDClient()
        client.timeout = 5
        client.connect(self.socket)
        try:
            yield client
        finally:
            client.disconnect()

    def update(self) -> None:
        """Rescan the music folder and wait until MPD has finished."""
        with self.client() as client:
            client.update()
            wait_for(lambda: "updating_db" not in client.status(), what="mpd database update")

    def queue(self) -> list[str]:
        with self.client() as client:
            return [song["file"] for song in client.playlistinfo()]


def add_song(music: Path, name: str, artist: str, seconds: float = 2.0, freq: float = 440.0) -> Path:
    """A short real Ogg Vorbis file tagged with ``artist``."""
    path = write_audio(music / name, synth(seconds, freq=freq, pulse_hz=2.0))
    tags = OggVorbis(path)
    tags["artist"] = artist
    tags["title"] = Path(name).stem
    tags.save()
    return path


@pytest.fixture
def mpd_server(tmp_path: Path) -> Iterator[MpdServer]:
    """A running MPD on a unix socket in tmp_path, with an empty music folder."""
    if MPD_BINARY is None:
        pytest.skip("mpd is not installed (apt-get install mpd)")
    server = MpdServer(tmp_path / "mpd")
    server.music.mkdir(parents=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def real_forecast():
    """The shipped forecaster; tests that need it are skipped until its weights exist."""
    import queueemo
    from queueemo.errors import ModelError

    try:
        queueemo.forecast(np.zeros((10, 2), dtype=np.float32), 1)
    except ModelError as exc:
        pytest.skip(f"forecaster weights not available: {exc}")
    return queueemo.forecast


def model_version_or_test() -> str:
    """The shipped clip model's version (so rescans keep our rows), else a placeholder."""
    from queueemo.errors import ModelError
    from queueemo.library.analysis import current_model_version

    try:
        return current_model_version()
    except ModelError:
        return "test"


def index_track(library, path: Path, root: Path, *, artist: str, opening: tuple[float, float],
                tail: tuple[float, float], genre: str = "", version: str = "test") -> None:
    """Store ``path`` as analysed, with 20 windows at ``opening`` then 20 at ``tail``."""
    from queueemo.emotion.summary import summarise
    from queueemo.library.db import STATUS_OK, Track, encode_trajectory

    trajectory = np.array([opening] * 20 + [tail] * 20, dtype=np.float32)
    stat = path.stat()
    with library.session() as session:
        session.add(Track(
            path=str(path), root=str(root), rel_path=str(path.relative_to(root)), size=stat.st_size,
            mtime_ns=stat.st_mtime_ns, duration_s=2.0, artist=artist, genre=genre, status=STATUS_OK,
            model_version=version, trajectory=encode_trajectory(trajectory),
            **summarise(trajectory, 20, 20),
        ))


@pytest.fixture
def queue_env(tmp_path: Path, mpd_server: MpdServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment pointing queueemo at the test MPD, a temp index and a temp config folder."""
    env = {
        "MPD_HOST": mpd_server.socket,
        "QUEUEEMO_DB": f"sqlite:///{tmp_path / 'index.sqlite3'}",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60.0,
            ) -> subprocess.CompletedProcess[str]:
    """``queueemo ARGS`` in a fresh interpreter, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-c", "from queueemo.cli import main; main()", *args],
        env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout,
    )


def write_config(tmp_path: Path, **daemon: object) -> Path:
    settings = {"watermark": 2, "keep_played": 1, "debounce_s": 0.3, "reconnect_min_s": 0.2,
                "reconnect_max_s": 1.0, "suspend_after_user_s": 0, **daemon}
    lines = ["[daemon]", *(f"{k} = {v!r}".replace("'", '"').replace("True", "true")
                           .replace("False", "false") for k, v in settings.items()),
             "[picker]", "repeat_window_hours = 0.001", "artist_spacing = 1", "tie_tolerance = 0.0"]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class DaemonProcess:
    """The daemon process, with a NOTIFY_SOCKET to hear its READY=1."""

    def __init__(self, tmp_path: Path, config: Path, *options: str) -> None:
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        address = str(tmp_path / "notify.sock")
        self.notify.bind(address)
        self.log = (tmp_path / "daemon.log").open("w+b")
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from queueemo.cli import main; main()",
             "--config", str(config), *options, "daemon"],
            env={**os.environ, "NOTIFY_SOCKET": address}, stdout=self.log, stderr=self.log,
        )

    def ready(self, timeout: float = 60.0) -> None:
        """Wait for READY=1 (STATUS= lines may come first)."""
        deadline = time.monotonic() + timeout
        while True:
            self.notify.settimeout(max(0.01, deadline - time.monotonic()))
            message = self.notify.recv(256)
            if message == b"READY=1":
                return
            assert message.startswith(b"STATUS="), (message, self.output())

    def messages(self) -> list[bytes]:
        """What the daemon told systemd so far (without waiting)."""
        found = []
        self.notify.setblocking(False)
        try:
            while True:
                found.append(self.notify.recv(256))
        except BlockingIOError:
            return found
        finally:
            self.notify.setblocking(True)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.notify.close()
        self.log.close()
