"""The distilled student (v2-lite): shapes, streaming equality, folding, the backend and its checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from audiofiles import synth, write_audio
from click.testing import CliRunner

from queueemo import assets
from queueemo.audio import decode_windows
from queueemo.cli import cli
from queueemo.config import load_settings
from queueemo.emotion.backends import get_backend
from queueemo.emotion.embedding import (
    EMBEDDING_SIZE,
    embed_file,
    embed_mel,
    embed_stream,
    stream_mel,
)
from queueemo.emotion.inference import predict_features
from queueemo.emotion.inference_lite import load_lite_head
from queueemo.emotion.inference_v2 import load_clip_v2
from queueemo.emotion.network import ClipEnsembleV2
from queueemo.emotion.training.student import STUDENT_NAME, StudentNetwork, load_student
from queueemo.errors import ModelError
from queueemo.library import Track

# Streamed and whole-track embeddings are the same computation on the same frames; only the order of
# float32 sums differs (cumulative sums in float64, so ≪ this).
STREAM_TOLERANCE = 1e-4


def test_student_gives_one_embedding_per_window_on_musicnns_scale(make_audio):
    path = make_audio("song.flac", seconds=7.0, freq=880.0, pulse_hz=6.0, noise=0.3)
    front = load_student()
    student = embed_file(path, front_end=front)
    teacher = embed_file(path)
    assert student.shape == teacher.shape == (14, EMBEDDING_SIZE + 4)
    assert np.isfinite(student).all()
    np.testing.assert_array_equal(student[:, EMBEDDING_SIZE:], teacher[:, EMBEDDING_SIZE:])
    s, t = student[:, :EMBEDDING_SIZE], teacher[:, :EMBEDDING_SIZE]
    constant = np.repeat(front.network.output_mean.numpy()[None], len(t), 0)  # musicnn's mean embedding
    # On this signal (measured): squared error 0.41 against 0.90 for the constant, cosine 0.80 against 0.41.
    assert np.mean((s - t) ** 2) < 0.6 * np.mean((constant - t) ** 2), "the student imitates musicnn"
    assert not np.allclose(s, t, atol=1e-2)


def test_streamed_student_embedding_equals_one_whole_track_pass(make_audio):
    path = make_audio("long.flac", seconds=75.0, freq=110.0, pulse_hz=2.0, noise=0.05)
    front = load_student()
    with torch.inference_mode():
        streamed = embed_stream(front, decode_windows(path, sample_rate=16_000), chunk_windows=16)
        power, n_windows = stream_mel(front, decode_windows(path, sample_rate=16_000))
        whole = embed_mel(front.network, power, n_windows, chunk_windows=1 << 20)
    assert streamed.shape == whole.shape == (150, EMBEDDING_SIZE)
    torch.testing.assert_close(streamed, whole, atol=STREAM_TOLERANCE, rtol=0)


def test_batch_norm_folds_into_the_convolutions_exactly():
    torch.manual_seed(0)
    network = StudentNetwork()
    for norm in network.norms:
        norm.running_mean.normal_()
        norm.running_var.uniform_(0.5, 2.0)
        norm.weight.data.normal_()
    mel = torch.rand(2, 300, 96) * 3
    with torch.inference_mode():
        expected = network.eval().varying_features(mel)
        folded = network.folded().varying_features(mel)
    assert not any(isinstance(n, torch.nn.BatchNorm1d) for n in network.folded().norms)
    torch.testing.assert_close(folded, expected, atol=1e-4, rtol=1e-4)


def test_v2_lite_is_selectable_with_its_own_version(make_audio, tmp_path):
    path = make_audio("song.wav", seconds=4.0, freq=440.0, pulse_hz=3.0)
    lite, v2 = get_backend("v2-lite"), get_backend("v2")
    assert lite.version.startswith("v2-lite/clip_v2_lite-") and lite.version != v2.version
    trajectory = lite.analyze(path)
    assert trajectory.shape == (8, 2) and trajectory.dtype == np.float32
    assert np.all(np.abs(trajectory) <= 1.0)
    assert not np.allclose(trajectory, v2.analyze(path))
    config = tmp_path / "config.toml"
    config.write_text('[emotion]\nmodel = "v2-lite"\n')
    assert load_settings(config, env={}).emotion.model == "v2-lite"
    result = CliRunner().invoke(cli, ["analyze", "--model", "v2-lite", "--json", str(path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["arousal"] == pytest.approx(trajectory[:, 0], abs=1e-4)


def _copy_lite_assets(folder: Path) -> None:
    for name in (f"{STUDENT_NAME}.npz", f"{STUDENT_NAME}.json", "clip_v2_lite.npz", "clip_v2_lite.json"):
        shutil.copy(assets.model_dir() / name, folder)


def test_a_head_trained_on_another_front_end_is_refused(tmp_path):
    _copy_lite_assets(tmp_path)
    model, _ = load_clip_v2(tmp_path, "v2-lite")
    assert len(model.members) >= 1
    info = json.loads((tmp_path / "clip_v2_lite.json").read_text())
    info["front_end"] = assets.read_info("musicnn_msd")["version"]  # trained on musicnn's embeddings
    (tmp_path / "clip_v2_lite.json").write_text(json.dumps(info))
    assets.read_info.cache_clear()
    load_clip_v2.cache_clear()
    with pytest.raises(ModelError, match="was trained on front end musicnn_msd"):
        load_clip_v2(tmp_path, "v2-lite")


def test_an_altered_student_is_refused(tmp_path):
    _copy_lite_assets(tmp_path)
    with np.load(tmp_path / f"{STUDENT_NAME}.npz") as arrays:
        changed = {k: v + (k == "out.bias") for k, v in arrays.items()}
    np.savez(tmp_path / f"{STUDENT_NAME}.npz", **changed)
    with pytest.raises(ModelError, match="does not match the checksum"):
        load_student(tmp_path)


def test_training_pools_patches_as_analysis_does():
    from queueemo.emotion.embedding import log_compress
    from queueemo.emotion.musicnn_input import pool_patches
    from queueemo.emotion.training.distil import DistilTraining, Pair, _batch, student_outputs

    rng = np.random.default_rng(0)
    pairs = [Pair("a", rng.uniform(0, 0.01, (3000, 96)).astype(np.float16),
                  rng.normal(size=(96, EMBEDDING_SIZE)).astype(np.float16))]
    network = StudentNetwork().eval()
    with torch.inference_mode():
        power, rows, starts, _ = _batch(pairs, DistilTraining(batch=2), rng, augment=False)
        trained = student_outputs(network, power, rows, starts)
        features = network.varying_features(log_compress(power))
        for row in range(2):
            mine = (rows == row).numpy()
            maximum, mean = pool_patches(features[row].numpy(), starts[mine].numpy(), 187, network.stride)
            analysed = network.embed_standardised(torch.from_numpy(maximum), torch.from_numpy(mean))
            torch.testing.assert_close(trained[mine], analysed, atol=1e-5, rtol=1e-5)


def test_a_head_trained_on_student_features_is_written_for_v2_lite_and_loads(tmp_path):
    from queueemo.emotion.training.datasets import Track
    from queueemo.emotion.training.train_clip_v2 import ClipV2Training, train_clip_v2

    rng = np.random.default_rng(0)

    def tracks(count: int, windows: int, curve: bool) -> list[Track]:
        out = []
        for i in range(count):
            features = rng.normal(size=(windows, EMBEDDING_SIZE)).astype(np.float16)
            targets = np.tanh(features[:, :2].astype(np.float32).cumsum(0) / 10) if curve else None
            out.append(Track(f"t{i}", f"t{i}", features, targets=targets,
                             quadrant=None if curve else f"Q{i % 4 + 1}"))
        return out

    for name in (f"{STUDENT_NAME}.npz", f"{STUDENT_NAME}.json"):
        shutil.copy(assets.model_dir() / name, tmp_path)
    info = train_clip_v2(curves={"train": tracks(3, 66, True), "val": tracks(2, 70, True)},
                         clips={"train": tracks(8, 30, False), "val": tracks(4, 30, False)},
                         out_dir=tmp_path, backend="v2-lite",
                         settings=ClipV2Training(members=1, max_epochs=1, batches_per_epoch=1))
    assert info["version"].startswith("clip_v2_lite-") and not (tmp_path / "clip_v2.pt").exists()
    assert info["front_end"] == assets.read_info(STUDENT_NAME)["version"]
    model, version = load_clip_v2(tmp_path, "v2-lite")
    assert version == info["version"]
    features = tracks(1, 40, True)[0].features
    assert predict_features(model, features).shape == (40, 2)
    head, numpy_version = load_lite_head(tmp_path)  # the same file, as analysis runs it
    assert numpy_version == version
    np.testing.assert_allclose(head.predict(features), predict_features(model, features), atol=1e-5)


def test_torch_free_analysis_equals_the_torch_student_and_head(make_audio):
    path = make_audio("song.flac", seconds=9.0, freq=330.0, pulse_hz=3.0, noise=0.05)
    model, _ = load_clip_v2(None, "v2-lite")
    with torch.inference_mode():
        expected = predict_features(model, embed_file(path, front_end=load_student(), descriptors=False))
    got = get_backend("v2-lite").analyze(path)
    assert got.shape == expected.shape == (18, 2)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_extra_distillation_audio_is_every_audio_file_once_capped_and_cached_in_pairs(tmp_path):
    from queueemo.emotion.musicnn_input import FRAMES_PER_WINDOW
    from queueemo.emotion.training.datasets import CACHE_FOLDERS, MEL_FOLDER, cache_name
    from queueemo.emotion.training.distil import load_pairs
    from queueemo.emotion.training.embeddings import EXTRA_FOLDER, audio_files, extra_jobs, run_job

    music = tmp_path / "music"
    tone = write_audio(music / "a" / "tone.WAV", synth(12.0, pulse_hz=2.0, noise=0.05))
    (music / "a" / "cover.png").write_bytes(b"not audio")
    (music / "notes.txt").write_text("not audio")
    files = audio_files([music, music / "a"])
    assert files == [tone.resolve()]

    cache = tmp_path / "cache"
    jobs = extra_jobs(files, cache, max_windows=10)
    assert [(job.front, job.excerpt) for job in jobs] == [("mel", (0, 10)), ("v2", (0, 10))]
    assert all(run_job(job) is None for job in jobs)
    assert extra_jobs(files, cache, max_windows=10) == [], "cached files are not computed again"
    (pair,) = load_pairs(cache / MEL_FOLDER / EXTRA_FOLDER, cache / CACHE_FOLDERS["v2"] / EXTRA_FOLDER,
                         [cache_name(tone.resolve())])
    assert pair.teacher.shape == (10, EMBEDDING_SIZE), "the first 10 windows of a 24-window file"
    assert abs(len(pair.mel) - 10 * FRAMES_PER_WINDOW) <= FRAMES_PER_WINDOW


def test_a_share_of_distillation_crops_comes_from_the_extra_audio():
    from queueemo.emotion.training.distil import DistilTraining, Pair, _batch

    rng = np.random.default_rng(0)

    def pair(level: float) -> Pair:
        return Pair("p", np.full((3000, 96), level, np.float16), np.zeros((96, EMBEDDING_SIZE), np.float16))

    for share, expected in ((0.0, 0.0), (1.0, 1.0)):
        power, *_ = _batch([pair(0.0)], DistilTraining(batch=8, extra_share=share), rng, augment=False,
                           extra=[pair(1.0)])
        assert power.amax(dim=(1, 2)).mean().item() == expected
    power, *_ = _batch([pair(0.0)], DistilTraining(batch=400, extra_share=0.5), rng, augment=False,
                       extra=[pair(1.0)])
    assert 0.4 < power.amax(dim=(1, 2)).mean().item() < 0.6


def test_the_head_term_is_zero_on_the_teachers_embeddings_and_the_head_stays_frozen():
    from queueemo.emotion.network import ClipV2Config
    from queueemo.emotion.training.distil import DistilTraining, Pair, distil, head_terms

    torch.manual_seed(0)
    head = ClipEnsembleV2(ClipV2Config(), members=2).eval()
    targets = torch.randn(30, EMBEDDING_SIZE)
    rows = torch.tensor([0] * 12 + [1] * 12 + [2] * 6)  # two crops of 12 windows, one of 6
    outputs, projections = head_terms(head, targets.clone(), targets, rows)
    assert outputs.item() < 1e-12 and projections.item() < 1e-12  # float rounding only
    outputs, projections = head_terms(head, targets + 0.5 * torch.randn_like(targets), targets, rows)
    assert outputs.item() > 1e-4 and projections.item() > 1e-3

    rng = np.random.default_rng(0)
    pairs = [Pair("a", rng.uniform(0, 0.01, (3000, 96)).astype(np.float16),
                  rng.normal(size=(96, EMBEDDING_SIZE)).astype(np.float16))]
    before = {name: value.clone() for name, value in head.state_dict().items()}
    student = StudentNetwork()
    start = {name: value.clone() for name, value in student.state_dict().items()}
    settings = DistilTraining(batch=2, steps=8, embedding_weight=0.0, head_weight=10.0, projection_weight=1.0)
    network, info = distil(pairs, pairs, settings, initial=student, head=head)
    assert all(torch.equal(before[name], value) for name, value in head.state_dict().items())
    assert not head.training and info["validation_fit"]["head_mse"] > 0
    assert not torch.equal(start["convs.0.weight"], network.state_dict()["convs.0.weight"]), \
        "the head term alone trains the student"


def test_the_shipped_student_loads_with_the_default_geometry():
    from queueemo.emotion.numpy_student import StudentConfig, load_numpy_student

    student, _ = load_numpy_student()
    stored = assets.read_info(STUDENT_NAME)["config"]
    assert student.config == StudentConfig.from_dict(stored) == StudentConfig()
    assert (student.stride, student.receptive_margin) == (4, 31)
    assert load_student().network.receptive_margin == 31


def test_a_deeper_student_starts_out_computing_what_its_starting_point_computes(make_audio, tmp_path):
    from queueemo.emotion.inference_lite import embed_file_lite
    from queueemo.emotion.numpy_student import load_numpy_student
    from queueemo.emotion.training.student import config_dict, deepened, student_arrays

    shipped, basis = load_numpy_student()
    network = StudentNetwork(shipped.config, batch_norm=False)
    network.load_state_dict({name: torch.from_numpy(value) for name, value in shipped.arrays.items()})
    deeper = deepened(network, (8, 16))
    assert deeper.config.convolutions[4:] == ((3, 1, 8), (3, 1, 16)) and deeper.config.gated_from == 4
    assert deeper.receptive_margin == 127
    # written and loaded as a student of its own: the geometry comes from the JSON
    np.savez(tmp_path / f"{STUDENT_NAME}.npz", **student_arrays(deeper, torch.from_numpy(basis)))
    info = {**assets.read_info(STUDENT_NAME), "config": config_dict(deeper.config),
            "sha256": assets.file_sha256(tmp_path / f"{STUDENT_NAME}.npz")}
    (tmp_path / f"{STUDENT_NAME}.json").write_text(json.dumps(info))
    loaded, _ = load_numpy_student(tmp_path)
    assert loaded.config == deeper.config and loaded.receptive_margin == 127
    assert len(load_student(tmp_path).network.convs) == 6
    path = make_audio("song.flac", seconds=20.0, freq=330.0, pulse_hz=2.5, noise=0.2)
    np.testing.assert_array_equal(embed_file_lite(path, loaded, basis), embed_file_lite(path, shipped, basis))
    power, n_windows = stream_mel(load_student(), decode_windows(path, sample_rate=16_000))
    with torch.inference_mode():
        before = embed_mel(deeper.eval(), power, n_windows)
        torch.testing.assert_close(before, embed_mel(network.eval(), power, n_windows), atol=1e-5, rtol=0)
        for gain in deeper.gains.values():
            gain.fill_(0.5)
        assert not torch.allclose(embed_mel(deeper, power, n_windows), before, atol=1e-2), "the gains act"
