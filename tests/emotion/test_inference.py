"""The shipped weights load from the installed package and honour the public API contracts."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import queueemo
from queueemo import assets
from queueemo.emotion import forecast, inference
from queueemo.errors import AudioError, ModelError


def test_shipped_weights_are_inside_the_installed_package():
    model_dir = assets.model_dir()
    assert model_dir.parent.name == "queueemo", "weights are found inside the package"
    for name, weights in (("clip", "clip.pt"), ("forecaster", "forecaster.npz")):
        assert (model_dir / weights).stat().st_size > 1000
        info = json.loads((model_dir / f"{name}.json").read_text())
        assert info["version"].startswith(f"{name}-")
        assert info["validation"], "weights ship with the validation metrics of their training run"


def test_analyze_gives_one_bounded_point_per_half_second(make_audio):
    path = make_audio("song.ogg", seconds=6.0, freq=220.0, pulse_hz=4.0)
    trajectory = queueemo.analyze(path)
    assert trajectory.shape == (12, 2)
    assert trajectory.dtype == np.float32
    assert np.all(np.abs(trajectory) <= 1.0)


def test_long_track_gets_one_finite_value_per_window(make_audio):
    # Longer than one context segment: blended segments must still give one finite value per window.
    path = make_audio("long.flac", seconds=40.0, freq=330.0, noise=0.05)
    trajectory = queueemo.analyze(path)
    assert trajectory.shape == (80, 2)
    assert np.isfinite(trajectory).all()


def test_analyze_reports_undecodable_files(tmp_path):
    bogus = tmp_path / "bogus.mp3"
    bogus.write_text("nope")
    with pytest.raises(AudioError, match=r"bogus\.mp3"):
        queueemo.analyze(bogus)


def test_weights_for_other_audio_settings_are_refused(tmp_path):
    source = assets.model_dir()
    for name in ("clip.pt", "clip.json"):
        shutil.copy(source / name, tmp_path / name)
    info = json.loads((tmp_path / "clip.json").read_text())
    info["features"]["n_mels"] = 64
    (tmp_path / "clip.json").write_text(json.dumps(info))
    with pytest.raises(ModelError, match="other audio settings"):
        inference.load_clip_model(tmp_path)


def test_missing_weights_say_what_to_do(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        forecast.load_weights(tmp_path)


def test_forecast_returns_steps_points_in_range():
    history = np.column_stack([np.linspace(-0.2, 0.3, 12), np.linspace(0.1, -0.1, 12)])
    result = queueemo.forecast(history, steps=4)
    assert result.shape == (4, 2)
    assert np.all(np.abs(result) <= 1.0)


def test_forecast_of_a_short_history_equals_its_padded_form():
    short = np.array([[0.2, -0.1], [0.25, -0.05]], dtype=np.float32)
    padded = np.concatenate([np.repeat(short[:1], 8, axis=0), short])
    np.testing.assert_allclose(queueemo.forecast(short, 3), queueemo.forecast(padded, 3), atol=1e-6)


def test_forecast_stays_near_a_steady_emotion():
    steady = np.tile([[0.4, -0.3]], (10, 1))
    nxt = queueemo.forecast(steady)[0]
    assert np.abs(nxt - [0.4, -0.3]).max() < 0.1


@pytest.mark.parametrize("bad", [np.zeros((0, 2)), np.zeros((5, 3)), np.zeros(4)])
def test_forecast_rejects_malformed_history(bad):
    with pytest.raises(ValueError):
        queueemo.forecast(bad)


def test_public_namespace_is_complete():
    import types

    public = {
        name for name, value in vars(queueemo).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    } - {"annotations", "TYPE_CHECKING"}
    assert public == set(queueemo.__all__) - {"__version__"}


def test_numpy_forecaster_equals_the_torch_network_it_was_trained_as():
    import torch

    from queueemo.emotion.network import Forecaster, ForecasterConfig

    weights, info = forecast.load_weights()
    network = Forecaster(ForecasterConfig(**info["config"]))
    network.load_state_dict({key: torch.from_numpy(value).float() for key, value in weights.items()})
    history = np.random.default_rng(0).uniform(-0.8, 0.8, size=(16, 10, 2)).astype(np.float32)
    with torch.inference_mode():
        expected = network.rollout(torch.from_numpy(history), 5).numpy()
    np.testing.assert_allclose(forecast.rollout(history, 5), expected, atol=1e-5)


def test_shipped_mel_basis_is_librosas():
    from queueemo import audio

    shipped = np.load(assets.model_dir() / assets.MEL_BASIS_FILE)
    np.testing.assert_allclose(shipped, audio.compute_mel_basis(), atol=1e-7)
