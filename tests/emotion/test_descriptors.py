"""Per-window acoustic descriptors: what they measure, that a gain leaves them alone, and that analysis
computes them with the same code, from the same mel frames, as the training cache."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch
from audiofiles import synth, write_audio

from queueemo.emotion import embedding
from queueemo.emotion.descriptors import DESCRIPTOR_NAMES, DescriptorStream, window_descriptors

SR = 16_000
FPW = embedding.FRAMES_PER_WINDOW


def _mel(signal: np.ndarray) -> tuple[torch.Tensor, int]:
    front = embedding.load_front_end()
    windows = signal[: len(signal) // 8000 * 8000].reshape(-1, 8000)
    return embedding.stream_mel(front, iter([windows]))


def _music(seconds: float = 8.0) -> np.ndarray:
    """Quiet slow tones, then loud fast bright notes, over a little noise (no digital silence, from which
    every onset is infinitely loud): every descriptor rises in the second half."""
    half = synth(seconds / 2, freq=220.0, sr=SR, loud=0.05, pulse_hz=1.0, noise=0.002)
    busy = synth(seconds / 2, freq=1760.0, sr=SR, loud=0.4, pulse_hz=6.0, noise=0.02)
    return np.concatenate([half, busy])


def test_louder_denser_brighter_music_raises_every_descriptor():
    power, n = _mel(_music())
    values = window_descriptors(power, n, FPW)
    assert values.shape == (n, len(DESCRIPTOR_NAMES)) == (16, 4)
    first, second = values[1:7].mean(0), values[9:15].mean(0)
    assert np.all(second > first), dict(zip(DESCRIPTOR_NAMES, second - first, strict=True))
    # Loudness is relative to the track: its median window is 0; the second half is ~18 dB louder
    # (and not half silent).
    assert np.median(values[:, 0]) == pytest.approx(0.0, abs=1e-6)
    assert 1.4 < second[0] - first[0] < 3.0


def test_a_gain_leaves_the_descriptors_unchanged():
    signal = _music()
    reference = window_descriptors(*_mel(signal), FPW)
    for gain_db in (-12.0, 6.0):
        scaled = window_descriptors(*_mel(signal * np.float32(10 ** (gain_db / 20))), FPW)
        np.testing.assert_allclose(scaled, reference, atol=0.01)


def test_streamed_chunks_equal_the_whole_track():
    power, n = _mel(_music())
    stream = DescriptorStream()
    for start in range(0, len(power), 37):
        stream.add(power[start : start + 37])
    np.testing.assert_allclose(stream.windows(n, FPW), window_descriptors(power, n, FPW), atol=1e-6)


def test_analysis_appends_the_descriptors_of_its_own_mel_to_the_embedding(tmp_path):
    path = write_audio(tmp_path / "music.wav", _music(), sr=SR)
    features = embedding.embed_file(path)
    signal, _ = soundfile.read(str(path), dtype="float32")
    power, n = _mel(signal)
    assert features.shape == (n, 200 + len(DESCRIPTOR_NAMES))
    np.testing.assert_allclose(features[:, 200:], window_descriptors(power, n, FPW), atol=2e-3)
