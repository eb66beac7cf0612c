"""The PyTorch musicnn port is pinned to embeddings of the original TensorFlow checkpoint.

``musicnn_golden.npz`` was written once by ``scripts/convert_musicnn.py --golden`` from the original
checkpoint (TensorFlow, librosa's mel) on ``golden_signal()``; the signal is generated here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from queueemo import assets
from queueemo.emotion import embedding, musicnn_input
from queueemo.errors import ModelError

GOLDEN = Path(__file__).with_name("musicnn_golden.npz")


def golden_signal() -> np.ndarray:
    """6.2 s at 16 kHz: a chord with a pulsed bass line, a melody and a little noise (deterministic)."""
    sr = 16_000
    t = np.arange(int(6.2 * sr)) / sr
    chord = sum(0.15 * np.sin(2 * np.pi * f * t) for f in (261.63, 329.63, 392.0))
    bass = 0.3 * np.sin(2 * np.pi * 65.41 * t) * (np.sin(2 * np.pi * 2 * t) > 0)
    melody = 0.2 * np.sin(2 * np.pi * (523.25 + 130 * np.floor(t * 3 % 4)) * t)
    noise = 0.02 * np.random.default_rng(7).standard_normal(len(t))
    return (chord + bass + melody + noise).astype(np.float32)


def _torch_patches(front: embedding.FrontEnd, signal: np.ndarray) -> torch.Tensor:
    power, _ = embedding.stream_mel(front, iter([signal[None]]))
    mel = embedding.log_compress(power)
    return torch.stack([mel[s : s + 187] for s in range(0, len(mel) - 186, 187)])


def test_port_reproduces_the_tensorflow_embeddings_on_the_same_input():
    golden = np.load(GOLDEN)
    front = embedding.load_front_end()
    with torch.inference_mode():
        got = front.network(torch.from_numpy(golden["mel"])).numpy()
    np.testing.assert_allclose(got, golden["penultimate"], atol=1e-4)


def test_port_with_its_own_mel_reproduces_musicnn_from_audio():
    golden = np.load(GOLDEN)
    front = embedding.load_front_end()
    with torch.inference_mode():
        mel = _torch_patches(front, golden_signal())
        np.testing.assert_allclose(mel.numpy(), golden["mel"], atol=1e-3)
        got = front.network(mel).numpy()
    np.testing.assert_allclose(got, golden["penultimate"], atol=1e-3)


def test_whole_track_pass_gives_one_embedding_per_window_close_to_exact_patches():
    signal = golden_signal()[: 6 * 16_000]
    front = embedding.load_front_end()
    with torch.inference_mode():
        power, n_windows = embedding.stream_mel(front, iter([signal.reshape(12, 8000)]))
        windows = embedding.embed_mel(front.network, power, n_windows, chunk_windows=5)
        mel = embedding.log_compress(power)
        start = int(musicnn_input.patch_starts(n_windows, len(mel))[6])
        exact = front.network(mel[None, start : start + 187])[0]
    assert windows.shape == (12, 200)
    cosine = torch.nn.functional.cosine_similarity(windows[6], exact, dim=0)
    assert cosine > 0.95, "sliding pooling stays close to the exact 3-s patch"


def test_chunking_does_not_change_the_embeddings():
    signal = golden_signal()
    front = embedding.load_front_end()
    with torch.inference_mode():
        power, n_windows = embedding.stream_mel(front, iter([signal[: 12 * 8000].reshape(12, 8000)]))
        one = embedding.embed_mel(front.network, power, n_windows, chunk_windows=12)
        many = embedding.embed_mel(front.network, power, n_windows, chunk_windows=2)
    np.testing.assert_allclose(one.numpy(), many.numpy(), atol=1e-4)


def _copy_assets(tmp_path: Path) -> Path:
    for name in ("musicnn_msd.npz", "musicnn_msd.json"):
        shutil.copy(assets.model_dir() / name, tmp_path / name)
    return tmp_path


def test_weights_for_other_audio_settings_are_refused(tmp_path):
    folder = _copy_assets(tmp_path)
    info = json.loads((folder / "musicnn_msd.json").read_text())
    info["audio"]["sample_rate"] = 22_050
    (folder / "musicnn_msd.json").write_text(json.dumps(info))
    with pytest.raises(ModelError, match="audio settings"):
        embedding.load_front_end(folder)


def test_altered_weights_are_refused(tmp_path):
    folder = _copy_assets(tmp_path)
    with (folder / "musicnn_msd.npz").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelError, match="checksum"):
        embedding.load_front_end(folder)


def test_streaming_equals_the_whole_track_pass():
    rng = np.random.default_rng(3)
    signal = np.concatenate([golden_signal(), golden_signal()[::-1], golden_signal()])[: 37 * 8000]
    signal = signal * rng.uniform(0.5, 1.0)
    windows = signal.reshape(37, 8000)
    front = embedding.load_front_end()
    with torch.inference_mode():
        power, n_windows = embedding.stream_mel(front, iter([windows]))
        whole = embedding.embed_mel(front.network, power, n_windows, chunk_windows=4)
        blocks = iter([windows[i : i + 3] for i in range(0, 37, 3)])
        streamed = embedding.embed_stream(front, blocks, chunk_windows=4)
    assert streamed.shape == (37, 200)
    np.testing.assert_allclose(streamed.numpy(), whole.numpy(), atol=1e-4)


def test_compact_network_equals_the_network_as_converted():
    signal = np.concatenate([golden_signal(), 0.3 * golden_signal()[::-1]])[: 24 * 8000]
    front = embedding.load_front_end()
    full, _ = embedding.load_full_network()
    with torch.inference_mode():
        power, n_windows = embedding.stream_mel(front, iter([signal.reshape(24, 8000)]))
        mel = embedding.log_compress(power)[None]
        np.testing.assert_allclose(front.network.frame_features(mel).numpy(),
                                   full.frame_features(mel).numpy(), atol=1e-3, rtol=1e-5)
        compact = embedding.embed_mel(front.network, power, n_windows)
        exact = embedding.embed_mel(full, power, n_windows)
    np.testing.assert_allclose(compact.numpy(), exact.numpy(), atol=1e-4)


def test_patch_pooling_equals_the_max_and_mean_of_each_patch():
    rng = np.random.default_rng(5)
    features = rng.standard_normal((9, 1400)).astype(np.float32) * 10
    for n_windows, n_frames in ((40, 1400), (3, 200), (2, 120)):
        starts = musicnn_input.patch_starts(n_windows, n_frames)
        length = min(musicnn_input.PATCH_FRAMES, n_frames)
        maximum, mean = musicnn_input.pool_patches(features[:, :n_frames], starts, length)
        patches = np.stack([features[:, s : s + length] for s in starts])  # (n, channels, length)
        np.testing.assert_array_equal(maximum, patches.max(axis=2))
        np.testing.assert_allclose(mean, patches.mean(axis=2, dtype=np.float64), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("stride", [2, 4])
def test_strided_features_pool_as_if_repeated_to_every_frame(stride):
    rng = np.random.default_rng(stride)
    for n_windows, n_frames in ((40, 1400), (3, 200), (2, 121)):
        coarse = rng.standard_normal((9, -(-n_frames // stride))).astype(np.float32)
        repeated = np.repeat(coarse, stride, axis=1)[:, :n_frames]
        starts = musicnn_input.patch_starts(n_windows, n_frames)
        length = min(musicnn_input.PATCH_FRAMES, n_frames)
        expected = musicnn_input.pool_patches(repeated, starts, length)
        got = musicnn_input.pool_patches(coarse, starts, length, stride)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_allclose(got[1], expected[1], rtol=1e-6, atol=1e-6)
