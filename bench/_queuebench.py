"""Shared by the benchmarks: a throw-away MPD and a synthetic index written in bulk."""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a queueemo subprocess: this checkout first on PYTHONPATH."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


def median_seconds(run: Callable[[], object], repeat: int) -> float:
    """The median wall time of ``repeat`` calls of ``run``."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def wait_for(condition, timeout: float = 30.0, what: str = "condition"):
    """Poll ``condition`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


@contextlib.contextmanager
def running_mpd(root: Path, songs: int) -> Iterator[str]:
    """An ``mpd --no-daemon`` on a unix socket with ``songs`` one-second Ogg files; yields the socket."""
    import mpd
    import soundfile

    binary = shutil.which("mpd") or "/usr/bin/mpd"
    music = root / "music"
    music.mkdir(parents=True)
    tone = 0.2 * np.sin(2 * np.pi * 440 * np.arange(44_100) / 44_100)
    soundfile.write(str(music / "song0.ogg"), tone.astype(np.float32), 44_100)
    for i in range(1, songs):
        os.link(music / "song0.ogg", music / f"song{i}.ogg")
    sock = str(root / "mpd.sock")
    conf = root / "mpd.conf"
    conf.write_text(
        f'music_directory "{music}"\ndb_file "{root / "db"}"\nstate_file "{root / "state"}"\n'
        f'pid_file "{root / "pid"}"\nbind_to_address "{sock}"\n'
        'audio_output {\n  type "null"\n  name "null"\n}\n', encoding="utf-8")
    process = subprocess.Popen([binary, "--no-daemon", str(conf)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)

    def client() -> mpd.MPDClient | None:
        c = mpd.MPDClient()
        try:
            c.connect(sock)
        except OSError:
            return None
        return c

    try:
        c = wait_for(client, what="mpd")
        c.update()
        wait_for(lambda: "updating_db" not in c.status(), timeout=300, what="mpd update")
        c.disconnect()
        yield sock
    finally:
        process.terminate()
        process.wait()


def write_index(url: str, music: Path, total: int, known: int, seed: int = 0) -> None:
    """``total`` analysed tracks with random trajectories; the first ``known`` are MPD's songs."""
    import sqlalchemy as sa

    from queueemo.emotion.summary import summarise
    from queueemo.library.db import STATUS_OK, Track, encode_trajectory, open_library

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(total):
        trajectory = np.clip(np.cumsum(rng.normal(0, 0.05, (60, 2)), axis=0)
                             + rng.uniform(-0.7, 0.7, 2), -1, 1).astype(np.float32)
        folder = music if i < known else music.parent / "elsewhere"
        rows.append({
            "path": str(folder / f"song{i}.ogg"), "root": str(folder), "rel_path": f"song{i}.ogg",
            "size": 1000, "mtime_ns": 0, "status": STATUS_OK, "artist": f"Artist {i % 5000}",
            "genre": ("rock", "jazz", "ambient", "pop")[i % 4], "model_version": "bench",
            "trajectory": encode_trajectory(trajectory), **summarise(trajectory, 20, 20),
        })
    with open_library(url) as library, library.session() as session:
        for start in range(0, total, 10_000):
            session.execute(sa.insert(Track), rows[start:start + 10_000])


def proc_status_mb(pid: int, field: str = "VmRSS") -> float:
    """A /proc/PID/status memory field (VmRSS, VmHWM) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


def queue_length(sock: str) -> int:
    """How many songs the MPD at ``sock`` has queued."""
    import mpd

    client = mpd.MPDClient()
    client.connect(sock)
    try:
        return int(client.status()["playlistlength"])
    finally:
        client.disconnect()
