"""The model seam: v2, v2-lite and seed selectable by name, config and --model; a model change re-analyses."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

import queueemo
from queueemo.cli import cli
from queueemo.config import load_settings
from queueemo.emotion.backends import get_backend
from queueemo.errors import ConfigError
from queueemo.library import ScanOptions, Track, open_library, scan
from queueemo.library.analysis import ModelAnalyser, current_model_version


def test_v2_gives_one_bounded_point_per_half_second(make_audio):
    path = make_audio("song.mp3", seconds=7.0, freq=220.0, pulse_hz=4.0, noise=0.02)
    trajectory = queueemo.analyze(path)
    assert trajectory.shape == (14, 2)
    assert trajectory.dtype == np.float32
    assert np.all(np.abs(trajectory) <= 1.0)


def test_v2_handles_tracks_shorter_and_longer_than_its_segments(make_audio):
    short = queueemo.analyze(make_audio("short.flac", seconds=1.2, freq=330.0), model="v2")
    long = queueemo.analyze(make_audio("long.flac", seconds=50.0, freq=110.0, pulse_hz=2.0), model="v2")
    assert short.shape == (2, 2) and long.shape == (100, 2)
    assert np.isfinite(long).all() and np.isfinite(short).all()


def test_v2_tells_calm_from_busy_audio_apart(make_audio):
    calm = queueemo.analyze(make_audio("calm.flac", seconds=8.0, freq=220.0, loud=0.05))
    busy = queueemo.analyze(make_audio("busy.flac", seconds=8.0, freq=880.0, pulse_hz=6.0, noise=0.3))
    assert np.abs(calm.mean(0) - busy.mean(0)).max() > 0.05, "different music, different emotion"


def test_seed_and_v2_are_selectable_by_name_and_give_different_trajectories(make_audio):
    path = make_audio("song.wav", seconds=4.0, freq=440.0, pulse_hz=3.0)
    seed, v2 = get_backend("seed"), get_backend("v2")
    assert seed.version.startswith("seed/clip-") and v2.version.startswith("v2/clip_v2-")
    assert get_backend().version == v2.version, "v2 is the default"
    a, b = seed.analyze(path), v2.analyze(path)
    assert a.shape == b.shape == (8, 2)
    assert not np.allclose(a, b)


def test_model_is_chosen_in_the_config_file_with_a_hint_for_typos(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[emotion]\nmodel = "seed"\n')
    assert load_settings(config, env={}).emotion.model == "seed"
    assert load_settings(None, env={}).emotion.model == "v2"
    config.write_text('[emotion]\nmodel = "sed"\n')
    with pytest.raises(ConfigError, match="did you mean 'seed'"):
        load_settings(config, env={})
    with pytest.raises(ConfigError, match="unknown emotion model"):
        get_backend("v3")


def test_analyze_command_follows_config_and_model_option(tmp_path, make_audio):
    path = make_audio("song.flac", seconds=3.0, freq=330.0, pulse_hz=2.0)
    config = tmp_path / "config.toml"
    config.write_text('[emotion]\nmodel = "seed"\n')

    def run(*args: str) -> list[float]:
        result = CliRunner().invoke(cli, [*args, "analyze", "--json", str(path)])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["arousal"]

    from_config = run("--config", str(config))
    assert from_config == pytest.approx(get_backend("seed").analyze(path)[:, 0], abs=1e-4)
    from_flag = CliRunner().invoke(cli, ["--config", str(config), "analyze", "--model", "v2", "--json",
                                         str(path)])
    assert json.loads(from_flag.stdout)["arousal"] == pytest.approx(
        get_backend("v2").analyze(path)[:, 0], abs=1e-4)


@pytest.mark.parametrize(("first", "second"), [("seed", "v2"), ("v2", "v2-lite")])
def test_changing_the_model_makes_the_scan_analyse_again(tmp_path, make_audio, first, second):
    music = tmp_path / "music"
    make_audio("music/a.flac", seconds=2.0, freq=220.0)
    make_audio("music/b.mp3", seconds=3.0, freq=660.0, pulse_hz=4.0)
    library = open_library(f"sqlite:///{tmp_path / 'library.sqlite3'}")
    try:
        def run(model: str):
            options = ScanOptions(jobs=1, analyse=ModelAnalyser(model),
                                  model_version=current_model_version(model))
            return scan(library, [music], options)

        assert run(first).analysed == 2
        assert run(first).analysed == 0, "same model: nothing to do"
        assert run(second).analysed == 2, "another model: every track again"
        with library.session() as session:
            versions = set(session.scalars(sa.select(Track.model_version)))
        assert versions == {current_model_version(second)}
    finally:
        library.close()


def test_scan_command_says_why_it_analyses_again(tmp_path, make_audio):
    make_audio("music/a.flac", seconds=2.0, freq=220.0)
    db = f"sqlite:///{tmp_path / 'library.sqlite3'}"
    music = str(tmp_path / "music")
    first = CliRunner().invoke(cli, ["scan", music, "--jobs", "1", "--db", db, "--model", "seed"])
    assert first.exit_code == 0, first.output
    second = CliRunner().invoke(cli, ["scan", music, "--jobs", "1", "--db", db])
    assert second.exit_code == 0, second.output
    assert "1 tracks were analysed by another model" in second.stderr
    assert second.stdout.strip().splitlines()[-1].startswith("analysed 1,")


def test_model_analyser_survives_pickling_into_workers():
    import pickle

    analyser = pickle.loads(pickle.dumps(ModelAnalyser("seed")))
    assert analyser.model == "seed"


def test_scan_of_one_folder_counts_only_its_outdated_tracks(tmp_path, make_audio):
    """Scanning one folder with another model said every track of the index would be re-analysed."""
    make_audio("music/a.flac", seconds=2.0, freq=220.0)
    make_audio("other/b.flac", seconds=2.0, freq=440.0)
    make_audio("other/c.flac", seconds=2.0, freq=660.0)
    db = f"sqlite:///{tmp_path / 'library.sqlite3'}"
    first = CliRunner().invoke(cli, ["scan", str(tmp_path / "music"), str(tmp_path / "other"),
                                     "--jobs", "1", "--db", db, "--model", "seed"])
    assert first.exit_code == 0, first.output
    second = CliRunner().invoke(cli, ["scan", str(tmp_path / "music"), "--jobs", "1", "--db", db])
    assert second.exit_code == 0, second.output
    assert "1 tracks were analysed by another model" in second.stderr
    assert second.stdout.strip().splitlines()[-1].startswith("analysed 1,")
    one_file = CliRunner().invoke(cli, ["scan", str(tmp_path / "other" / "b.flac"), "--jobs", "1",
                                        "--db", db])
    assert "1 tracks were analysed by another model" in one_file.stderr
