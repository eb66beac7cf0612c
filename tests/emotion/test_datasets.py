"""Training data: splits never share a group, targets follow the annotated curve."""

from __future__ import annotations

import numpy as np
import pytest
from audiofiles import synth, write_audio

from queueemo.emotion.training import datasets
from queueemo.errors import QueueemoError


def test_split_is_a_stable_function_of_the_group():
    groups = [f"artist {i}" for i in range(2000)]
    splits = [datasets.split_of(g) for g in groups]
    assert splits == [datasets.split_of(g) for g in groups]
    shares = {name: splits.count(name) / len(groups) for name in datasets.SPLITS}
    assert abs(shares["train"] - 0.7) < 0.05 and abs(shares["test"] - 0.15) < 0.04


def test_window_targets_interpolate_measure_centres_stretched_to_the_audio():
    rows = [
        {"start_s": "0", "end_s": "2", "arousal": "-0.5", "valence": "0.0"},
        {"start_s": "2", "end_s": "4", "arousal": "0.5", "valence": "0.2"},
    ]
    targets = datasets._window_targets(rows, n_windows=16)  # audio 8 s: annotations stretched ×2
    assert targets.shape == (16, 2)
    assert targets[0, 0] == pytest.approx(-0.5)  # before the first measure's centre (2 s)
    assert targets[-1, 0] == pytest.approx(0.5)  # after the last centre (6 s)
    assert np.all(np.diff(targets[:, 0]) >= 0)


@pytest.mark.training_data
def test_emomusic_songs_load_and_no_artist_is_on_two_sides(shared_data):
    curves = datasets.load_emomusic(shared_data)
    assert len(curves) > 500
    assert all(c.points.shape[1] == 2 and np.abs(c.points).max() <= 1 for c in curves)
    sides = {}
    for curve in curves:
        sides.setdefault(curve.group, set()).add(datasets.split_of(curve.group))
    assert all(len(s) == 1 for s in sides.values())


def test_audio_sets_are_read_from_a_data_folder_and_split_by_group(tmp_path):
    data, cache = tmp_path / "data", tmp_path / "cache"
    (data / "emomusic").mkdir(parents=True)
    vgmidi = data / "vgmidi"
    write_audio(vgmidi / "audio" / "piece_a.opus", synth(4.0))
    vgmidi.joinpath("pieces.csv").write_text("piece\npiece_a\nnot_rendered\n")
    vgmidi.joinpath("dynamic.csv").write_text("piece,start_s,end_s,arousal,valence\n"
                                              "piece_a,0,2,-0.5,0.1\npiece_a,2,4,0.5,0.3\n")
    write_audio(data / "4q" / "audio" / "Q2" / "song_b.opus", synth(3.0, freq=220.0))
    (data / "4q" / "metadata.csv").write_text("Song,Artist,Quadrant\nsong_b,Some Band,Q2\n")
    lines: list[str] = []
    curves, clips = datasets.load_audio_sets(data, cache, report=lines.append)
    [piece] = curves[datasets.split_of("piece_a")]
    [clip] = clips[datasets.split_of("some band")]
    assert sum(map(len, curves.values())) == sum(map(len, clips.values())) == 1
    assert piece.targets is not None and len(piece.targets) == len(piece.features) == 8
    assert piece.targets[0, 0] < 0 < piece.targets[-1, 0] and clip.quadrant == "Q2"
    assert lines == [] and any(cache.rglob("*.npy"))  # features cached for the next run
    with pytest.raises(QueueemoError, match="not a queueemo data folder"):
        datasets.load_audio_sets(tmp_path / "cache", cache)
