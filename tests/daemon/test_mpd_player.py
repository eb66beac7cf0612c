"""MPD connection: capability check, queue reading, idle with timeout, errors at the edge."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from queueemo.config import MpdSettings, load_settings
from queueemo.errors import AccessError, PlayerError
from queueemo.player import Player, uri_for

from .conftest import MpdServer, add_song


def test_connects_over_a_unix_socket_and_reads_the_queue(mpd_server: MpdServer):
    add_song(mpd_server.music, "a.ogg", "Alpha")
    add_song(mpd_server.music, "b.ogg", "Beta")
    mpd_server.update()
    with Player(MpdSettings(host=mpd_server.socket)) as player:
        assert player.music_directory() == str(mpd_server.music)
        assert player.knows("a.ogg") and not player.knows("missing.ogg")
        added = [player.add("a.ogg"), player.add("b.ogg")]
        state = player.queue()
    assert [(e.uri, e.artist) for e in state.entries] == [("a.ogg", "Alpha"), ("b.ogg", "Beta")]
    assert added == [e.song_id for e in state.entries]
    assert state.current is None and state.upcoming == 2
    assert state.reference is not None and state.reference.uri == "b.ogg"


def test_idle_returns_on_events_and_after_its_timeout(mpd_server: MpdServer):
    add_song(mpd_server.music, "a.ogg", "Alpha")
    mpd_server.update()
    with Player(MpdSettings(host=mpd_server.socket)) as player:
        started = time.monotonic()
        assert player.idle(0.3) == set()
        assert 0.25 < time.monotonic() - started < 2
        with mpd_server.client() as other:
            other.add("a.ogg")
        assert "playlist" in player.idle(5)
        read, write = os.pipe()
        os.write(write, b"!")
        started = time.monotonic()
        assert player.idle(5, read) == set()
        assert time.monotonic() - started < 1
        assert len(player.queue().entries) == 1  # the connection is still in step
        os.close(read)
        os.close(write)


def test_unreachable_mpd_is_one_player_error(tmp_path):
    player = Player(MpdSettings(host=str(tmp_path / "no.sock")))
    with pytest.raises(PlayerError, match=r"cannot connect to MPD at .*no\.sock.*MPD_HOST"):
        player.connect()
    assert not player.connected


def test_password_at_host_reaches_the_settings(mpd_server: MpdServer):
    settings = load_settings(None, env={"MPD_HOST": f"secret@{mpd_server.socket}"})
    assert settings.mpd.host == mpd_server.socket and settings.mpd.password == "secret"
    with pytest.raises(AccessError, match="refused the password"):  # MPD has no such password
        Player(settings.mpd).connect()


def test_lost_connection_becomes_player_error_and_closes(mpd_server: MpdServer):
    player = Player(MpdSettings(host=mpd_server.socket))
    player.connect()
    mpd_server.kill()
    with pytest.raises(PlayerError):
        player.queue()
    assert not player.connected


def test_uris_are_relative_to_the_music_directory():
    assert uri_for("/m/x/a.ogg", "x/a.ogg", "/m") == "x/a.ogg"
    assert uri_for("/elsewhere/a.ogg", "a.ogg", "/m") is None
    assert uri_for("/elsewhere/a.ogg", "sub/a.ogg", None) == "sub/a.ogg"


def test_events_between_waits_are_not_lost(mpd_server: MpdServer):
    add_song(mpd_server.music, "a.ogg", "Alpha")
    mpd_server.update()
    with Player(MpdSettings(host=mpd_server.socket)) as player:
        assert player.idle(0.2) == set()
        player.queue()  # a command: the client left idle
        with mpd_server.client() as other:
            other.add("a.ogg")
        started = time.monotonic()
        assert "playlist" in player.idle(5)
        assert time.monotonic() - started < 1


def test_idle_uses_only_python_mpd2_public_api():
    source = (Path(__file__).resolve().parents[2] / "queueemo" / "player.py").read_text()
    for private in ("_write_command", "_read_lines", "_read_line", "_sock", "_fetch"):
        assert f".{private}" not in source


def test_mpd_timeout_bounds_a_silent_server(tmp_path):
    path = str(tmp_path / "silent.sock")
    with socket.socket(socket.AF_UNIX) as silent:
        silent.bind(path)
        silent.listen()  # accepts, never says "OK MPD"
        started = time.monotonic()
        with pytest.raises(PlayerError, match=r"no answer within 0\.5 s|MPD hello"):
            Player(MpdSettings(host=path, timeout_s=0.5)).connect()
        assert time.monotonic() - started < 3


class AbstractSocketMpd(MpdServer):
    """An MPD that also listens on an abstract socket (``@name``)."""

    name = f"@queueemo-test-{os.getpid()}"

    def write_config(self) -> Path:
        conf = super().write_config()
        conf.write_text(conf.read_text() + f'bind_to_address "{self.name}"\n', encoding="utf-8")
        return conf


def test_connects_to_an_abstract_socket_named_in_mpd_host(tmp_path, mpd_server):
    server = AbstractSocketMpd(tmp_path / "abstract")
    server.music.mkdir(parents=True)
    server.start()
    try:
        settings = load_settings(None, env={"MPD_HOST": server.name})
        assert settings.mpd.host == server.name and not settings.mpd.password
        with Player(settings.mpd) as player:
            assert player.queue().entries == ()
    finally:
        server.stop()
