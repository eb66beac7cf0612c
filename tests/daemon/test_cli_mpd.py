"""CLI commands that reach MPD: ``show`` by URI and ``current``, ``config``, ``next --host/--db``."""

from __future__ import annotations

import json

from queueemo.library.db import open_library

from .conftest import MpdServer, add_song, index_track, run_cli


def indexed_song(mpd_server: MpdServer, url: str) -> None:
    path = add_song(mpd_server.music / "album", "tune.ogg", "Tuner")
    with open_library(url) as library:
        index_track(library, path, mpd_server.music, artist="Tuner", opening=(0.5, -0.25),
                    tail=(0.1, 0.2))
    mpd_server.update()


def test_show_finds_a_track_by_mpd_uri_and_the_current_song(mpd_server, queue_env):
    indexed_song(mpd_server, queue_env["QUEUEEMO_DB"])
    by_uri = run_cli("show", "--json", "album/tune.ogg")
    assert by_uri.returncode == 0, by_uri.stderr
    assert json.loads(by_uri.stdout)["path"] == str(mpd_server.music / "album" / "tune.ogg")
    nothing = run_cli("show", "current")
    assert nothing.returncode == 1 and "not playing anything" in nothing.stderr
    with mpd_server.client() as client:
        client.add("album/tune.ogg")
        client.play()
        client.pause(1)
    current = run_cli("show", "current")
    assert current.returncode == 0, current.stderr
    assert "opening     arousal +0.50  valence -0.25" in current.stdout


def test_config_prints_effective_settings_with_their_sources(mpd_server, queue_env):
    result = run_cli("config", "--port", "6611", env={"MPD_HOST": "s3cret@@abstract"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"# config file: {queue_env['XDG_CONFIG_HOME']}/queueemo/config.toml (not present)"
    assert 'host = "@abstract"  # env' in lines
    assert 'password = "***"  # env' in lines
    assert "port = 6611  # flag" in lines
    assert "watermark = 2  # default" in lines
    assert "s3cret" not in result.stdout


def test_next_takes_host_and_db_flags(mpd_server, queue_env, tmp_path, real_forecast):
    url = f"sqlite:///{tmp_path / 'other.sqlite3'}"
    indexed_song(mpd_server, url)
    result = run_cli("next", "--dry-run", "--host", mpd_server.socket, "--db", url,
                     env={"MPD_HOST": str(tmp_path / "nowhere.sock"), "QUEUEEMO_DB": "sqlite:///x"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "album/tune.ogg"
