"""The live library: debounced folder events, and new files becoming pickable in the daemon."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

from queueemo.config import MpdSettings
from queueemo.library.db import open_library
from queueemo.library.watcher import Watcher
from queueemo.player import Player

from .conftest import DaemonProcess, MpdServer, add_song, wait_for, write_config


def test_a_burst_of_changes_is_one_batch(tmp_path: Path):
    batches: list[set[str]] = []
    done = threading.Event()

    def on_burst(paths: set[str]) -> None:
        batches.append(paths)
        done.set()

    watcher = Watcher([str(tmp_path)], on_burst, debounce_s=0.3)
    watcher.start()
    try:
        for i in range(20):
            (tmp_path / f"{i}.ogg").write_bytes(b"x")
        (tmp_path / "0.ogg").rename(tmp_path / "moved.ogg")
        (tmp_path / "1.ogg").unlink()
        assert done.wait(5)
        time.sleep(0.5)
    finally:
        watcher.stop()
    assert len(batches) == 1
    assert {str(tmp_path / n) for n in ("0.ogg", "moved.ogg", "1.ogg", "19.ogg")} <= batches[0]


def test_stop_is_prompt_while_idle(tmp_path: Path):
    watcher = Watcher([str(tmp_path)], lambda paths: None, debounce_s=60)
    watcher.start()
    started = time.monotonic()
    watcher.stop()
    assert time.monotonic() - started < 2


def test_a_new_file_is_analysed_and_becomes_pickable(tmp_path: Path, mpd_server: MpdServer,
                                                      queue_env, clip_model, real_forecast):
    from queueemo.queueing import picker_candidates

    add_song(mpd_server.music, "old.ogg", "Old", seconds=3)
    mpd_server.update()
    daemon = DaemonProcess(tmp_path, write_config(tmp_path, watermark=1))
    try:
        daemon.ready()
        add_song(mpd_server.music / "new", "fresh.ogg", "Newcomer", seconds=3, freq=330.0)
        with open_library(queue_env["QUEUEEMO_DB"]) as library, \
                Player(MpdSettings(host=mpd_server.socket)) as player:
            music = player.music_directory()
            wait_for(lambda: "new/fresh.ogg" in picker_candidates(library, music).uris,
                     timeout=60, what="the watcher to analyse the new file")
            wait_for(lambda: player.knows("new/fresh.ogg") or player.database_changed(),
                     what="the daemon to have MPD update its database")
    finally:
        daemon.close()


def test_a_file_added_while_the_daemon_was_down_is_analysed_when_it_starts(
        tmp_path: Path, mpd_server: MpdServer, queue_env, clip_model, real_forecast):
    """No watcher event will come for it: the restarted daemon found it only at the next rescan, a day on."""
    from queueemo.queueing import picker_candidates

    add_song(mpd_server.music / "new", "while_down.ogg", "Newcomer", seconds=3, freq=330.0)
    mpd_server.update()
    daemon = DaemonProcess(tmp_path, write_config(tmp_path, watermark=1))
    try:
        daemon.ready()
        with open_library(queue_env["QUEUEEMO_DB"]) as library:
            wait_for(lambda: "new/while_down.ogg" in picker_candidates(library, str(mpd_server.music)).uris,
                     timeout=60, what="the daemon to analyse the file added while it was down")
        daemon.process.send_signal(signal.SIGTERM)
        assert daemon.process.wait(15) == 0
    finally:
        daemon.close()
    (tmp_path / "notify.sock").unlink()
    again = DaemonProcess(tmp_path, write_config(tmp_path, watermark=1))  # nothing changed since
    try:
        again.ready()
        wait_for(lambda: "rescan: analysed 0" in again.output(), what="the rescan at start")
        time.sleep(0.5)
        assert "asking MPD to update" not in again.output(), again.output()
    finally:
        again.close()
