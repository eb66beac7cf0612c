"""``queueemo daemon`` as systemd runs it: a real process beside a real MPD playing in real time."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from queueemo.library.db import open_library

from .conftest import (
    DaemonProcess,
    MpdServer,
    add_song,
    index_track,
    model_version_or_test,
    wait_for,
    write_config,
)

SONGS = 8  # 2 s each; with a 4 s repeat window there is always something allowed


@pytest.fixture
def indexed(mpd_server: MpdServer, queue_env: dict[str, str]) -> dict[str, str]:
    """SONGS short songs by different artists, indexed with spread-out emotions."""
    version = model_version_or_test()
    with open_library(queue_env["QUEUEEMO_DB"]) as library:
        for i in range(SONGS):
            path = add_song(mpd_server.music, f"song{i}.ogg", f"Artist {i}", freq=200.0 + 60 * i)
            point = (round(-0.8 + 0.2 * i, 2), round(0.7 - 0.2 * i, 2))
            index_track(library, path, mpd_server.music, artist=f"Artist {i}", opening=point,
                        tail=point, version=version)
    mpd_server.update()
    return queue_env


@pytest.fixture
def daemon(tmp_path: Path, indexed, real_forecast) -> Iterator[DaemonProcess]:
    process = DaemonProcess(tmp_path, write_config(tmp_path))
    try:
        process.ready()
        yield process
    finally:
        process.close()


def upcoming(server: MpdServer) -> int:
    with server.client() as client:
        status = client.status()
        length = int(status["playlistlength"])
        return length - (int(status["song"]) + 1 if "song" in status else 0)


def test_daemon_keeps_the_watermark_survives_mpd_restarts_and_exits_0(daemon, mpd_server):
    wait_for(lambda: upcoming(mpd_server) >= 2, what="the daemon to seed the queue")
    with mpd_server.client() as client:
        client.play()
    lowest = 2
    deadline = time.monotonic() + 7  # three to four songs play through
    while time.monotonic() < deadline:
        lowest = min(lowest, upcoming(mpd_server))
        assert len(mpd_server.queue()) <= 1 + 1 + 2 + 1, "played songs are cropped"
        time.sleep(0.1)
    with mpd_server.client() as client:
        assert client.status()["state"] == "play"
        assert int(client.status()["song"]) <= 2
    assert lowest >= 1, daemon.output()  # momentarily 1 between a song change and the top-up

    mpd_server.kill()
    time.sleep(0.5)
    mpd_server.start()
    with mpd_server.client() as client:
        client.clear()
    wait_for(lambda: upcoming(mpd_server) >= 2, what="the daemon to reconnect and refill")
    assert "lost MPD" in daemon.output()

    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.process.wait(15) == 0, daemon.output()
    assert "daemon stopped" in daemon.output()


def test_mpd_stopping_under_the_daemon_is_one_line_without_a_traceback(daemon, mpd_server):
    wait_for(lambda: upcoming(mpd_server) >= 2, what="the daemon to seed the queue")
    time.sleep(0.5)  # the daemon is idling on MPD
    mpd_server.stop()  # SIGTERM, as `systemctl stop mpd` or a package upgrade does
    wait_for(lambda: "lost MPD" in daemon.output(), what="the daemon to notice")
    mpd_server.start()
    wait_for(lambda: daemon.output().count("connected to MPD") == 2, what="the daemon to reconnect")
    output = daemon.output()
    assert "Traceback" not in output and "Exception in callback" not in output, output
    lost = next(line for line in output.splitlines() if "lost MPD" in line)
    assert "MPD closed the connection" in lost and "MPD_HOST" not in lost, lost  # it was found


def test_daemon_records_the_songs_mpd_plays(daemon, mpd_server, queue_env):
    from queueemo.library.history import recent_plays

    wait_for(lambda: upcoming(mpd_server) >= 2, what="the daemon to seed the queue")
    with mpd_server.client() as client:
        client.play()
    with open_library(queue_env["QUEUEEMO_DB"]) as library:
        plays = wait_for(lambda: len(recent_plays(library, 0)) >= 2 and recent_plays(library, 0),
                         what="two recorded plays")
    assert plays[0][0].startswith("song") and plays[0][1].startswith("Artist")
    daemon.process.send_signal(signal.SIGINT)
    assert daemon.process.wait(15) == 0


def test_reconnect_delays_grow_to_a_cap_and_reset():
    from queueemo.daemon import Backoff

    backoff = Backoff(5, 3600)
    delays = [backoff.next() for _ in range(12)]
    assert delays[:4] == [5, 10, 20, 40] and delays[-1] == 3600
    assert backoff.at_maximum == delays.count(3600) == 2
    backoff.reset()
    assert backoff.next() == 5 and backoff.at_maximum == 0


def stays(condition, seconds: float) -> bool:
    """Whether ``condition`` holds at every look during ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not condition():
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def patient_daemon(tmp_path: Path, indexed, real_forecast) -> Iterator[DaemonProcess]:
    process = DaemonProcess(tmp_path, write_config(tmp_path, suspend_after_user_s=3.0))
    try:
        process.ready()
        yield process
    finally:
        process.close()


def test_a_cleared_queue_is_refilled_only_after_the_suspension(patient_daemon, mpd_server):
    wait_for(lambda: upcoming(mpd_server) >= 2, what="the daemon to seed the queue")
    with mpd_server.client() as client:
        client.clear()
        cleared = time.monotonic()
    assert stays(lambda: not mpd_server.queue(), 2.0), patient_daemon.output()
    wait_for(lambda: upcoming(mpd_server) >= 2, timeout=10, what="the refill after the suspension")
    assert time.monotonic() - cleared >= 2.9
    assert "the queue was cleared" in patient_daemon.output()


def test_songs_added_one_by_one_suspend_the_refill_with_one_line(patient_daemon, mpd_server):
    wait_for(lambda: upcoming(mpd_server) >= 2, what="the daemon to seed the queue")
    queued = mpd_server.queue()
    for uri in [*queued, queued[0]]:  # as `mpc add` three times: each is its own change of the queue
        with mpd_server.client() as client:
            client.add(uri)
        time.sleep(0.5)
    assert stays(lambda: len(mpd_server.queue()) == len(queued) + 3, 1.5), patient_daemon.output()
    assert patient_daemon.output().count("songs were added by hand") == 1, patient_daemon.output()


def test_arc_mode_says_whether_the_arc_starts_or_resumes_after_a_restart(tmp_path, indexed,
                                                                         real_forecast, mpd_server):
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace("[picker]\n", (
        '[picker]\nmode = "arc"\narc = "calm:energetic"\narc_minutes = 30.0\n'
        f'arc_state_file = "{tmp_path / "arc.json"}"\n')), encoding="utf-8")
    outputs = []
    for _ in range(2):  # the second daemon finds the arc begun by the first
        process = DaemonProcess(tmp_path, config)
        try:
            process.ready()
            wait_for(lambda: upcoming(mpd_server) >= 2, what="the daemon to seed the queue")
            process.process.send_signal(signal.SIGTERM)
            assert process.process.wait(15) == 0
            outputs.append(process.output())
        finally:
            process.close()
            (tmp_path / "notify.sock").unlink()
        with mpd_server.client() as client:
            client.clear()
    assert "arc mode: calm:energetic over 30 min, starting now" in outputs[0], outputs[0]
    assert "arc mode: calm:energetic over 30 min, resumed 0 min in" in outputs[1], outputs[1]


def test_info_logging_leaves_out_the_schedulers_bookkeeping(tmp_path, indexed, real_forecast):
    """`--log-level info` showed APScheduler's 'Adding job tentatively …' lines among queueemo's."""
    process = DaemonProcess(tmp_path, write_config(tmp_path), "--log-level", "info")
    try:
        process.ready()
        process.process.send_signal(signal.SIGTERM)
        assert process.process.wait(15) == 0
        assert "queueemo daemon ready" in process.output()
        assert "apscheduler" not in process.output(), process.output()
    finally:
        process.close()


def test_skipping_past_the_end_of_the_queue_plays_on(daemon, mpd_server):
    """`mpc next` on the last song stopped MPD with no current song; the daemon took every entry for
    upcoming and added nothing, and `play` then replayed the queue's played songs."""
    wait_for(lambda: upcoming(mpd_server) >= 2, what="the daemon to seed the queue")
    with mpd_server.client() as client:
        client.play()
    wait_for(lambda: upcoming(mpd_server) >= 2, what="the daemon to top up while it plays")
    with mpd_server.client() as client:
        before = {song["id"] for song in client.playlistinfo()}
        client.command_list_ok_begin()  # at once, before the daemon can top up
        client.play(len(before) - 1)
        client.next()
        client.command_list_end()

    def playing_a_new_song() -> bool:
        with mpd_server.client() as client:
            status = client.status()
            return status["state"] == "play" and status.get("songid") not in before

    wait_for(playing_a_new_song, timeout=10, what="the daemon to play on after the end")
    assert "the queue ran out" in daemon.output()


def test_single_mode_leaves_the_queue_alone_until_it_is_off(daemon, mpd_server):
    wait_for(lambda: upcoming(mpd_server) >= 2, what="the daemon to seed the queue")
    with mpd_server.client() as client:
        client.single(1)
        client.clear()
    assert stays(lambda: not mpd_server.queue(), 2.0), daemon.output()
    with mpd_server.client() as client:
        client.single(0)
    wait_for(lambda: upcoming(mpd_server) >= 2, timeout=5, what="the refill once single is off")
    assert "single mode: leaving the queue alone" in daemon.output()


def test_the_daemon_keeps_the_queue_through_the_player_it_is_given(indexed, mpd_server, real_forecast,
                                                                   tmp_path):
    import threading

    from queueemo.config import load_settings
    from queueemo.daemon import Daemon
    from queueemo.player import Player

    class CountingPlayer(Player):
        def __init__(self, mpd_settings) -> None:
            super().__init__(mpd_settings)
            self.added: list[str] = []

        def add(self, uri: str) -> int:
            self.added.append(uri)
            return super().add(uri)

    settings = load_settings(write_config(tmp_path))
    player = CountingPlayer(settings.mpd)
    daemon = Daemon(settings, player=player, forecast=real_forecast)
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        wait_for(lambda: upcoming(mpd_server) >= 2, what="the daemon to seed the queue")
    finally:
        daemon.stop()
        thread.join(15)
    assert not thread.is_alive()
    assert player.added == mpd_server.queue()


def test_an_error_met_by_every_tick_is_logged_once_until_it_clears(indexed, mpd_server, real_forecast,
                                                                     tmp_path, caplog):
    import logging
    import threading

    from queueemo.config import load_settings
    from queueemo.daemon import Daemon
    from queueemo.errors import DatabaseError
    from queueemo.player import Player

    class BrokenIndexPlayer(Player):
        """A real player whose queue reads meet an index error until ``healed`` is set."""

        def __init__(self, mpd_settings) -> None:
            super().__init__(mpd_settings)
            self.failures = 0
            self.healed = threading.Event()

        def queue(self):
            if not self.healed.is_set():
                self.failures += 1
                raise DatabaseError("database disk image is malformed")
            return super().queue()

    settings = load_settings(write_config(tmp_path))
    player = BrokenIndexPlayer(settings.mpd)
    daemon = Daemon(settings, player=player, forecast=real_forecast)
    thread = threading.Thread(target=daemon.run)
    with caplog.at_level(logging.INFO, logger="queueemo"):
        thread.start()
        try:
            wait_for(lambda: player.failures >= 4, what="four ticks meeting the error")
            player.healed.set()
            wait_for(lambda: upcoming(mpd_server) >= 2, what="the daemon to fill the queue once healed")
        finally:
            daemon.stop()
            thread.join(15)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert sum("malformed" in message for message in errors) == 1, errors
    assert any(r.getMessage().startswith("working again after") for r in caplog.records)
