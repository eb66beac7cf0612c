"""The daemon on a PostgreSQL index that restarts under it: one log line, reconnection with growing
delays, then the queue is kept and new files are indexed again; an interrupted scan left no half track."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from queueemo.library.db import Track, open_library

from .conftest import DaemonProcess, MpdServer, add_song, index_track, wait_for, write_config
from .test_daemon import upcoming

pytestmark = pytest.mark.usefixtures("clip_model", "real_forecast")


def _statuses(url: str, under: str) -> dict[str, str]:
    with open_library(url) as library, library.session() as session:
        rows = session.execute(sa.select(Track.path, Track.status)).all()
    return {path: status for path, status in rows if f"/{under}/" in path}


def _half_written(url: str) -> list[str]:
    """Tracks the daemon marked analysed whose analysis is not all there."""
    with open_library(url) as library, library.session() as session:
        return [path for path in session.scalars(sa.select(Track.path).where(Track.status == "ok", sa.or_(
            Track.trajectory.is_(None), Track.model_version.is_(None), Track.opening_arousal.is_(None),
            Track.closing_arousal.is_(None), Track.mean_valence.is_(None), Track.analysed_at.is_(None))))
                if "/old" not in path]  # written by the test


def _server_down(postgres) -> bool:
    try:
        psycopg.connect(host=str(postgres.socket_dir), user="queueemo", dbname="postgres").close()
    except psycopg.OperationalError:
        return True
    return False


def test_daemon_rides_out_a_database_restart_mid_scan(tmp_path: Path, mpd_server: MpdServer, queue_env,
                                                      postgres, monkeypatch: pytest.MonkeyPatch,
                                                      clip_model: str) -> None:
    url = postgres.new_database()
    monkeypatch.setenv("QUEUEEMO_DB", url)
    with open_library(url) as library:
        for i in range(6):
            path = add_song(mpd_server.music, f"old{i}.ogg", f"Artist {i}", freq=200.0 + 60 * i)
            point = (round(-0.8 + 0.3 * i, 2), round(0.7 - 0.3 * i, 2))
            index_track(library, path, mpd_server.music, artist=f"Artist {i}", opening=point, tail=point,
                        version=clip_model)
    mpd_server.update()
    daemon = DaemonProcess(tmp_path, write_config(tmp_path, watermark=2))
    try:
        daemon.ready()
        wait_for(lambda: upcoming(mpd_server) >= 2, what="the daemon to seed the queue")
        for i in range(6):  # the watcher's scan analyses these, one commit per track
            add_song(mpd_server.music / "new", f"new{i}.ogg", f"New {i}", seconds=8, freq=150.0 + 70 * i)
        wait_for(lambda: "ok" in _statuses(url, "new").values(), timeout=180,
                 what="the daemon's scan to store its first new track")
        restart = threading.Thread(target=postgres.restart, kwargs={"down_s": 4})
        restart.start()
        wait_for(lambda: _server_down(postgres), what="the server to stop")
        with mpd_server.client() as client:
            client.clear()  # the daemon must pick again while the index is away
        restart.join()
        left = sum(status == "pending" for status in _statuses(url, "new").values())
        assert left > 0, "the scan finished before the restart: nothing was interrupted"
        wait_for(lambda: upcoming(mpd_server) >= 2, timeout=60, what="the daemon to refill the queue")
        wait_for(lambda: set(_statuses(url, "new").values()) == {"ok"}, timeout=240,
                 what="the interrupted scan to be finished")
        add_song(mpd_server.music / "later", "later.ogg", "Later", seconds=2, freq=500.0)
        wait_for(lambda: _statuses(url, "later").get(str(mpd_server.music / "later/later.ogg")) == "ok",
                 timeout=120, what="a file added after the restart to be analysed")
        output = daemon.output()
        assert output.count("lost the database") == 1, output
        assert "database back after" in output and "Traceback" not in output, output
        assert _half_written(url) == []
        assert len(_statuses(url, "new")) == 6
    finally:
        daemon.close()
