"""Feature-domain augmentation: exact gain changes and random low-pass filtering of log-mel windows.

Both act on ``log1p(mel power)`` directly: a gain ``g`` multiplies power by ``g²``, and a low-pass
multiplies each mel band's power by the filter's response at that band's centre. The shipped data differ
in bandwidth (4q previews end near 12–16 kHz, the piano renders near 20 kHz), so random low-pass
filtering stops the model from learning "dull top octave = this dataset".
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from queueemo.audio import N_MELS, SAMPLE_RATE

GAIN_DB = (-12.0, 6.0)
CUTOFF_HZ = (7_000.0, 21_000.0)
LOWPASS_PROBABILITY = 0.7


@lru_cache(maxsize=1)
def _mel_centres() -> torch.Tensor:
    import librosa

    edges = librosa.mel_frequencies(n_mels=N_MELS + 2, fmin=0.0, fmax=SAMPLE_RATE / 2)
    return torch.from_numpy(edges[1:-1].astype(np.float32))


def augment(features: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Randomly re-gain and low-pass a batch of crops: (batch, windows, frames, mels) log-mel."""
    batch = features.shape[0]
    power = torch.expm1(features.float())
    low, high = GAIN_DB
    gain_db = torch.rand(batch, generator=generator) * (high - low) + low
    scale = (10.0 ** (gain_db / 10.0)).view(batch, 1, 1, 1)
    cutoff = torch.rand(batch, generator=generator) * (CUTOFF_HZ[1] - CUTOFF_HZ[0]) + CUTOFF_HZ[0]
    apply = torch.rand(batch, generator=generator) < LOWPASS_PROBABILITY
    # 8th-order Butterworth-like magnitude² response at each mel centre.
    ratio = _mel_centres()[None, :] / cutoff[:, None]
    response = torch.where(apply[:, None], 1.0 / (1.0 + ratio**16), torch.ones_like(ratio))
    return torch.log1p(power * scale * response.view(batch, 1, 1, N_MELS))
