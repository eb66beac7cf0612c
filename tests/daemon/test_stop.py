"""SIGTERM while the watcher's batch is being analysed: the daemon and its workers end promptly."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from audiofiles import synth, write_audio

from .conftest import DaemonProcess, MpdServer, add_song, wait_for, write_config

STOP_LIMIT_S = 10.0  # "a few seconds" on a busy two-core machine; the whole batch takes far longer


def children_of(pid: int) -> set[int]:
    """Child and grandchild processes of ``pid`` (the forkserver, the workers forked from it, their
    ffmpegs, the resource tracker)."""
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        with open(task / "children") as listing:
            found |= {int(child) for child in listing.read().split()}
    for child in list(found):
        try:
            found |= {int(grandchild) for task in Path(f"/proc/{child}/task").iterdir()
                      for grandchild in (task / "children").read_text().split()}
        except OSError:
            continue
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_sigterm_during_a_watcher_batch_stops_daemon_and_workers_promptly(
        tmp_path: Path, mpd_server: MpdServer, queue_env, clip_model):
    add_song(mpd_server.music, "old.ogg", "Old")
    mpd_server.update()
    daemon = DaemonProcess(tmp_path, write_config(tmp_path, watermark=1))
    try:
        daemon.ready()
        for i in range(12):  # flac: libsndfile's vorbis encoder crashes on long writes
            write_audio(mpd_server.music / "batch" / f"{i}.flac", synth(60, freq=200.0 + 50 * i))
        wait_for(lambda: "paths changed; rescanning" in daemon.output(), timeout=30,
                 what="the watcher's batch to start")
        workers = wait_for(lambda: children_of(daemon.process.pid), timeout=30,
                           what="analysis workers")
        time.sleep(1.0)  # the workers are importing torch or analysing
        started = time.monotonic()
        daemon.process.send_signal(signal.SIGTERM)
        code = daemon.process.wait(60)
        took = time.monotonic() - started
        assert code == 0, daemon.output()
        assert took < STOP_LIMIT_S, f"stopped after {took:.1f} s\n{daemon.output()}"
        deadline = time.monotonic() + 5  # the forkserver exits once its pipe from the daemon is closed
        while time.monotonic() < deadline and any(map(alive, workers)):
            time.sleep(0.1)
        left = {pid: Path(f"/proc/{pid}/cmdline").read_bytes()[:80] for pid in workers if alive(pid)}
        assert not left, f"no worker outlives the daemon: {left}"
    finally:
        for pid in children_of(daemon.process.pid) if daemon.process.poll() is None else ():
            os.kill(pid, signal.SIGKILL)
        daemon.close()
