"""The v2 network's linear read-out and ensemble, the within-piece loss and the scale-normalised
forecaster."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch

from queueemo import assets
from queueemo.emotion import forecast
from queueemo.emotion.inference import predict_features
from queueemo.emotion.inference_v2 import load_clip_v2
from queueemo.emotion.musicnn_input import FRONT_END_NAME
from queueemo.emotion.network import ClipEnsembleV2, ClipModelV2, ClipV2Config, Forecaster, ForecasterConfig
from queueemo.emotion.training.datasets import Track
from queueemo.emotion.training.train_clip_v2 import ClipV2Training, train_clip_v2, within_loss
from queueemo.emotion.training.train_forecaster import persistence_ratio
from queueemo.errors import ModelError


def test_linear_read_out_is_the_base_the_lstm_path_is_added_to():
    torch.manual_seed(0)
    model = ClipModelV2(ClipV2Config(linear=True)).eval()
    x = torch.randn(3, 20, 200)
    with torch.inference_mode():
        full = model(x)
        torch.nn.init.zeros_(model.head.weight)
        torch.nn.init.zeros_(model.head.bias)
        linear_only = model(x)
        expected = torch.tanh(model.read_out(x))  # input mean 0, std 1: normalisation is the identity
    assert full.shape == (3, 20, 2) and torch.all(full.abs() <= 1)
    torch.testing.assert_close(linear_only, expected)
    assert not torch.allclose(full, linear_only), "the LSTM path contributes"


def test_v2_without_read_out_keeps_the_projection_as_its_window_embedding():
    model = ClipModelV2(ClipV2Config(linear=False, projection=16)).eval()
    assert model.embed_windows(torch.zeros(5, 200)).shape == (5, 16)
    with_read_out = ClipModelV2(ClipV2Config(linear=True, projection=16)).eval()
    assert with_read_out.embed_windows(torch.zeros(5, 200)).shape == (5, 18)


def test_within_loss_scores_the_course_not_the_level():
    t = torch.linspace(0, 1, 32)
    target = torch.stack([torch.sin(6 * t), torch.full_like(t, 0.3)], dim=-1)[None]  # valence flat
    shifted = target + 0.5  # same course, another level and (for valence) no target movement
    assert within_loss(shifted, target).item() == pytest.approx(0.0, abs=1e-5)
    assert within_loss(-target, target).item() == pytest.approx(2.0, abs=1e-5)
    assert within_loss(target, torch.zeros_like(target)).item() == 0.0  # nothing moves: nothing to follow


def test_normalised_forecaster_scales_with_its_history_and_numpy_equals_torch():
    torch.manual_seed(0)
    config = ForecasterConfig(normalise=True, floor=0.001)
    network = Forecaster(config).eval()
    rng = np.random.default_rng(1)
    history = np.cumsum(rng.normal(0, 0.02, size=(8, 10, 2)), axis=1) + rng.uniform(-0.3, 0.3, (8, 1, 2))
    weights = {key: value.double().numpy() for key, value in network.state_dict().items()}
    last = history[:, -1:]
    with torch.inference_mode():
        step = network(torch.from_numpy(history).float()).numpy()
        doubled = network(torch.from_numpy(last + 2 * (history - last)).float()).numpy()
    np.testing.assert_allclose(forecast.step(weights, history, config.to_dict()), step, atol=1e-5)
    # Measured in its own step size, a history twice as jumpy predicts a change twice as large.
    np.testing.assert_allclose(doubled - last[:, 0], 2 * (step - last[:, 0]), atol=1e-5)


def test_persistence_is_the_unit_of_the_forecaster_selection_score():
    rng = np.random.default_rng(0)
    history, future = rng.normal(size=(50, 10, 2)), rng.normal(size=(50, 10, 2))
    assert persistence_ratio(np.repeat(history[:, -1:], 10, 1), history, future) == pytest.approx(1.0)
    assert persistence_ratio(future, history, future) == 0.0


def test_ensemble_averages_its_members_per_window():
    torch.manual_seed(0)
    ensemble = ClipEnsembleV2(ClipV2Config(projection=8, context_hidden=4), members=3).eval()
    x = torch.randn(2, 30, 200)
    with torch.inference_mode():
        members = [member(x) for member in ensemble.members]
        out = ensemble(x)
    torch.testing.assert_close(out, torch.stack(members).mean(0))
    assert not torch.allclose(members[0], members[1]), "members start from different weights"


def _tracks(rng: np.random.Generator, count: int, windows: int, *, curve: bool) -> list[Track]:
    tracks = []
    for i in range(count):
        features = rng.normal(size=(windows, 200)).astype(np.float16)
        if curve:
            targets = np.tanh(features[:, :2].astype(np.float32).cumsum(0) / 10)
            tracks.append(Track(f"c{i}", f"c{i}", features, targets=targets))
        else:
            tracks.append(Track(f"q{i}", f"q{i}", features, quadrant=f"Q{i % 4 + 1}"))
    return tracks


def test_trained_members_are_one_weights_file_that_analysis_loads(tmp_path):
    rng = np.random.default_rng(0)
    curves = {"train": _tracks(rng, 3, 66, curve=True), "val": _tracks(rng, 2, 70, curve=True)}
    clips = {"train": _tracks(rng, 8, 30, curve=False), "val": _tracks(rng, 4, 30, curve=False)}
    shutil.copy(assets.model_dir() / f"{FRONT_END_NAME}.json", tmp_path)
    settings = ClipV2Training(members=2, max_epochs=1, batches_per_epoch=1)
    info = train_clip_v2(curves=curves, clips=clips, out_dir=tmp_path, settings=settings)
    assert [run["seed"] for run in info["member_runs"]] == [1234, 1235]
    assert set(info["validation"]) >= {"4q", "vgmidi", "vgmidi_within"}
    model, version = load_clip_v2(tmp_path)
    assert version == info["version"] and len(model.members) == 2
    trajectory = predict_features(model, curves["val"][0].features)
    assert trajectory.shape == (70, 2) and np.all(np.abs(trajectory) <= 1)
    # The version is the checksum of the one weights file, so new members make a scan re-analyse.
    assert version == f"clip_v2-{hashlib.sha256((tmp_path / 'clip_v2.pt').read_bytes()).hexdigest()[:12]}"


def test_shipped_v2_is_one_file_of_members_trained_from_different_seeds():
    model, version = load_clip_v2()
    info = assets.read_info("clip_v2")
    assert version == info["version"] and len(model.members) == info["members"] >= 2
    assert len({run["seed"] for run in info["member_runs"]}) == info["members"]
    first = model.members[0]
    x = torch.randn(1, 40, 200) * first.input_std + first.input_mean
    x = torch.cat([x, torch.randn(1, 40, first.config.descriptors)], dim=-1)
    with torch.inference_mode():
        outputs = [member(x) for member in model.members]
    assert not torch.allclose(outputs[0], outputs[1], atol=1e-3)


def test_v2_weights_from_before_ensembles_are_refused_with_a_hint(tmp_path):
    for name in (f"{FRONT_END_NAME}.json", "clip_v2.pt", "clip_v2.json"):
        shutil.copy(assets.model_dir() / name, tmp_path)
    info = json.loads((tmp_path / "clip_v2.json").read_text())
    del info["members"]
    (tmp_path / "clip_v2.json").write_text(json.dumps(info))
    with pytest.raises(ModelError, match="before ensembles: retrain"):
        load_clip_v2(tmp_path)


def test_descriptors_are_read_after_the_embedding_and_ignored_by_a_model_without_them():
    torch.manual_seed(0)
    x = torch.randn(2, 20, 204)
    moved = x.clone()
    moved[..., 200:] += 3.0
    with_descriptors = ClipModelV2(ClipV2Config(descriptors=4)).eval()
    without = ClipModelV2(ClipV2Config()).eval()
    with torch.inference_mode():
        assert with_descriptors.embed_windows(x).shape == (2, 20, 36)
        assert not torch.allclose(with_descriptors(x), with_descriptors(moved))
        torch.testing.assert_close(without(x), without(moved))
        torch.testing.assert_close(without(x), without(x[..., :200]))


def test_training_normalises_descriptors_by_the_training_windows(tmp_path):
    rng = np.random.default_rng(0)

    def described(tracks: list[Track]) -> list[Track]:
        for track in tracks:
            extra = rng.normal(5.0, 2.0, size=(len(track.features), 4)).astype(np.float16)
            track.features = np.hstack([track.features, extra])
        return tracks

    curves = {"train": described(_tracks(rng, 3, 66, curve=True)),
              "val": described(_tracks(rng, 2, 70, curve=True))}
    clips = {"train": described(_tracks(rng, 8, 30, curve=False)),
             "val": described(_tracks(rng, 4, 30, curve=False))}
    shutil.copy(assets.model_dir() / f"{FRONT_END_NAME}.json", tmp_path)
    train_clip_v2(curves=curves, clips=clips, out_dir=tmp_path, network=ClipV2Config(descriptors=4),
                  settings=ClipV2Training(members=1, max_epochs=1, batches_per_epoch=1))
    model, _ = load_clip_v2(tmp_path)
    member = model.members[0]
    assert member.config.descriptors == 4 and member.input_mean.shape == (200,)
    np.testing.assert_allclose(member.descriptor_mean.numpy(), 5.0, atol=0.2)
    np.testing.assert_allclose(member.descriptor_std.numpy(), 2.0, atol=0.2)
