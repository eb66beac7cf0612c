"""Settings come from defaults, the config file, the environment and flags, in that order."""

from __future__ import annotations

import pytest

from queueemo.config import load_settings
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


def test_a_named_config_file_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", env={})


def test_broken_toml_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(write(tmp_path, "[mpd\n"), env={})


def test_picker_modes_weights_and_shares_are_checked(tmp_path):
    settings = load_settings(write(tmp_path, "[picker]\nmode = 'arc'\narc = 'sad:happy'\n"), env={})
    assert (settings.picker.mode, settings.picker.arc, settings.picker.loudness_weight) == (
        "arc", "sad:happy", 0.3)
    for bad in ("mode = 'shuffle'", "loudness_weight = -1", "min_choice_share = 0", "arc_minutes = 0"):
        with pytest.raises(ConfigError, match=r"\[picker\]"):
            load_settings(write(tmp_path, f"[picker]\n{bad}\n"), env={})
