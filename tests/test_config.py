"""Settings come from defaults, the config file, the environment and flags, in that order."""

from __future__ import annotations

import os
import socket

import pytest

from queueemo.config import default_mpd_host, describe_settings, load_settings
from queueemo.errors import ConfigError


def write(tmp_path, text: str):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_defaults_need_no_file(tmp_path):
    settings = load_settings(None, env={})
    assert settings.daemon.watermark == 2
    assert settings.database_url.startswith("sqlite:///")


def test_layers_override_in_order(tmp_path):
    path = write(tmp_path, '[mpd]\nhost = "filehost"\nport = 6601\n[picker]\nartist_spacing = 5\n')
    env = {"MPD_HOST": "secret@envhost", "QUEUEEMO_PICKER_ARTIST_SPACING": "7"}
    settings = load_settings(path, env=env, overrides={"picker": {"artist_spacing": 9, "seed_track": None}})
    assert settings.mpd.host == "envhost"
    assert settings.mpd.password == "secret"
    assert settings.mpd.port == 6601
    assert settings.picker.artist_spacing == 9


def test_abstract_socket_host_is_not_read_as_a_password(tmp_path):
    settings = load_settings(write(tmp_path, ""), env={"MPD_HOST": "@mpd"})
    assert settings.mpd.host == "@mpd" and settings.mpd.password == ""


def test_unknown_keys_are_all_reported_with_a_hint(tmp_path):
    path = write(tmp_path, "[mpd]\nhots = 'x'\n[pickr]\na = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    message = str(caught.value)
    assert "did you mean 'host'" in message
    assert "did you mean 'picker'" in message


def test_wrong_types_and_ranges_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="port"):
        load_settings(write(tmp_path, "[mpd]\nport = 'abc'\n"), env={})
    with pytest.raises(ConfigError, match="watermark"):
        load_settings(write(tmp_path, "[daemon]\nwatermark = 0\n"), env={})
    with pytest.raises(ConfigError, match="reconnect_min_s"):
        load_settings(write(tmp_path, "[daemon]\nreconnect_min_s = 0\n"), env={})


def test_a_fraction_for_a_whole_number_is_refused_not_truncated(tmp_path):
    with pytest.raises(ConfigError, match=r"\[library\] jobs: 2.5 is not a valid int"):
        load_settings(write(tmp_path, "[library]\njobs = 2.5\n"), env={})
    assert load_settings(write(tmp_path, "[library]\njobs = 2.0\n"), env={}).library.jobs == 2


def test_tilde_in_music_roots_is_the_home_folder(tmp_path, monkeypatch):
    """It was taken literally: `scan` then said '/current/folder/~/Music does not exist'."""
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = load_settings(write(tmp_path, '[library]\nmusic_roots = ["~/Music", "/srv/music"]\n'), env={})
    assert settings.library.music_roots == (str(tmp_path / "Music"), "/srv/music")


def test_a_plain_file_path_as_database_url_is_a_sqlite_file(tmp_path, monkeypatch):
    """`--db ~/music.sqlite3` (or the same in the config) was refused as 'not a database URL'."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    for given, file in (("~/music.sqlite3", tmp_path / "music.sqlite3"), ("idx.db", tmp_path / "idx.db")):
        settings = load_settings(write(tmp_path, f"[library]\ndatabase_url = '{given}'\n"), env={})
        assert settings.database_url == f"sqlite:///{file}"
    url = "postgresql+psycopg://me@db/queueemo"
    assert load_settings(None, env={"QUEUEEMO_DB": url}).database_url == url


def test_a_named_config_file_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", env={})


def test_broken_toml_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(write(tmp_path, "[mpd\n"), env={})


@pytest.mark.parametrize(("value", "password", "host"), [
    ("pw@@sock", "pw", "@sock"),
    ("@sock", "", "@sock"),
    ("pw@host", "pw", "host"),
    ("p@ss@word@host", "p", "ss@word@host"),  # the FIRST @ splits, as libmpdclient does
    ("/run/mpd/socket", "", "/run/mpd/socket"),
])
def test_mpd_host_splits_password_at_the_first_at(tmp_path, value, password, host):
    settings = load_settings(write(tmp_path, ""), env={"MPD_HOST": value})
    assert (settings.mpd.password, settings.mpd.host) == (password, host)


def test_mpd_timeout_and_tilde_are_honoured(tmp_path):
    settings = load_settings(write(tmp_path, ""), env={"MPD_HOST": "~/mpd.sock", "MPD_TIMEOUT": "2.5"})
    assert settings.mpd.timeout_s == 2.5
    assert settings.mpd.host == os.path.expanduser("~/mpd.sock") and "~" not in settings.mpd.host


def test_without_a_host_the_user_then_the_system_socket_then_localhost(tmp_path):
    runtime = tmp_path / "run"
    (runtime / "mpd").mkdir(parents=True)
    user_socket = str(runtime / "mpd" / "socket")
    env = {"XDG_RUNTIME_DIR": str(runtime)}
    assert default_mpd_host(env, exists=lambda p: True) == user_socket
    assert default_mpd_host(env, exists=lambda p: p == "/run/mpd/socket") == "/run/mpd/socket"
    assert default_mpd_host(env, exists=lambda p: False) == "localhost"
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(user_socket)
        assert load_settings(write(tmp_path, ""), env=env).mpd.host == user_socket


def test_effective_settings_say_where_they_came_from_and_mask_secrets(tmp_path):
    path = write(tmp_path, "[daemon]\nwatermark = 4\n[library]\n"
                           "database_url = 'postgresql+psycopg://me:hunter2@db/queueemo'\n")
    rows = {(section, key): (value, source) for section, key, value, source in describe_settings(
        path, env={"MPD_HOST": "secret@host", "MPD_PORT": "6601"}, overrides={"mpd": {"port": 7000}})}
    assert rows["daemon", "watermark"] == (4, f"file {path}")
    assert rows["daemon", "keep_played"] == (20, "default")
    assert rows["mpd", "host"] == ("host", "env")
    assert rows["mpd", "password"] == ("***", "env")
    assert rows["mpd", "port"] == (7000, "flag")
    assert rows["library", "database_url"] == ("postgresql+psycopg://me:***@db/queueemo", f"file {path}")
    assert "hunter2" not in repr(rows) and "secret" not in repr(rows)


def test_a_password_with_an_at_sign_is_masked_whole():
    from queueemo.config import mask_url

    assert mask_url("postgresql+psycopg://me:pa@ss@db/q") == "postgresql+psycopg://me:***@db/q"
    assert mask_url("postgresql+psycopg://me@db/q") == "postgresql+psycopg://me@db/q"


def test_picker_modes_weights_and_shares_are_checked(tmp_path):
    settings = load_settings(write(tmp_path, "[picker]\nmode = 'arc'\narc = 'sad:happy'\n"), env={})
    assert (settings.picker.mode, settings.picker.arc, settings.picker.loudness_weight,
            settings.picker.onset_weight) == ("arc", "sad:happy", 0.8, 0.4)
    for bad in ("mode = 'shuffle'", "loudness_weight = -1", "min_choice_share = 0", "arc_minutes = 0",
                "onset_weight = -0.1"):
        with pytest.raises(ConfigError, match=r"\[picker\]"):
            load_settings(write(tmp_path, f"[picker]\n{bad}\n"), env={})


def test_a_setting_that_is_not_a_finite_number_is_refused(tmp_path):
    """nan passed every range check (nan <= 0 is false) and inf overflowed the scheduler's timers."""
    for bad in ("[picker]\narc_minutes = nan", "[picker]\nloudness_weight = nan",
                "[daemon]\nrescan_interval_hours = inf"):
        with pytest.raises(ConfigError, match="is not a valid float"):
            load_settings(write(tmp_path, bad), env={})
    with pytest.raises(ConfigError, match="is not a valid float"):
        load_settings(None, env={"QUEUEEMO_PICKER_ARC_MINUTES": "nan"})


def test_a_bad_arc_is_refused_when_loading_in_arc_mode(tmp_path):
    """The daemon treats a ConfigError as permanent (exit 78); a bad arc used to pass loading and fail
    every pick of a daemon that had said "ready"."""
    with pytest.raises(ConfigError, match=r"\[picker\] arc: bad arc point 'bogus'"):
        load_settings(write(tmp_path, "[picker]\nmode = 'arc'\narc = 'calm:bogus'\n"), env={})
    with pytest.raises(ConfigError, match=r"\[picker\] arc: .*outside"):
        load_settings(write(tmp_path, "[picker]\nmode = 'arc'\narc = '2,0:calm'\n"), env={})
