"""What musicnn (and networks distilled from it) read: 16-kHz audio as a 96-band log-mel, in 3-s patches.

The constants, the patch geometry (one patch centred on each 0.5-s window) and the streaming of decoded
samples into STFT frames, in numpy only, so the torch front end (``embedding``) and the torch-free runtime
share one definition. The frames streamed here equal librosa's centred STFT with zero padding over the
whole signal.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from queueemo.assets import asset_path, file_sha256, read_info
from queueemo.audio import WINDOW_SECONDS
from queueemo.errors import ModelError

FRONT_END_NAME = "musicnn_msd"  # the converted musicnn weights (``musicnn_msd.npz``)
SAMPLE_RATE = 16_000
N_FFT = 512
HOP_LENGTH = 256
N_MELS = 96
PATCH_FRAMES = 187  # 3 s at hop 256 and 16 kHz, as musicnn computes it
FRAMES_PER_WINDOW = WINDOW_SECONDS * SAMPLE_RATE / HOP_LENGTH  # 31.25
FLOAT16_MAX = 65504.0


def audio_settings() -> dict[str, float | int | str]:
    """The input the converted weights expect; stored in their JSON and checked at load."""
    return {
        "sample_rate": SAMPLE_RATE,
        "n_fft": N_FFT,
        "hop_length": HOP_LENGTH,
        "n_mels": N_MELS,
        "mel": "slaney, centred STFT, zero padding, hann",
        "scale": "log10(10000 * float16(mel power) + 1)",
        "patch_frames": PATCH_FRAMES,
        "window_seconds": WINDOW_SECONDS,
    }


def checked_front_end(name: str, model_dir: Path | None, remedy: str) -> Path:
    """Path of front end ``name``'s ``.npz`` (musicnn or the student): ``ModelError`` if it was made for
    other audio settings or does not match the checksum in its JSON (``remedy`` says what to do)."""
    info = read_info(name, model_dir)
    weights = asset_path(f"{name}.npz", model_dir)
    if info.get("audio") != audio_settings():
        raise ModelError(f"{weights} expects audio settings {info.get('audio')}; this code computes "
                         f"{audio_settings()}")
    if file_sha256(weights) != info.get("sha256"):
        raise ModelError(f"{weights} does not match the checksum in {name}.json "
                         f"(damaged or replaced: {remedy})")
    return weights


def stft_chunks(blocks: Iterator[np.ndarray]) -> Iterator[tuple[np.ndarray, int]]:
    """Windows of 16-kHz samples → (samples whose uncentred frames at hop 256 come next, windows so far).

    Each chunk holds whole frames only (an empty chunk when a block completes none; the last chunk is
    the zero-padded end), so that the frames of all chunks equal a centred STFT of the whole signal.
    """
    half = N_FFT // 2
    pending = np.zeros(half, dtype=np.float32)
    n_windows = 0
    for block in blocks:
        n_windows += len(block)
        pending = np.concatenate([pending, np.asarray(block, dtype=np.float32).ravel()])
        count = (len(pending) - N_FFT) // HOP_LENGTH + 1
        if count > 0:
            yield pending[: (count - 1) * HOP_LENGTH + N_FFT], n_windows
            pending = pending[count * HOP_LENGTH :]
    pending = np.concatenate([pending, np.zeros(half, dtype=np.float32)])
    yield (pending if len(pending) >= N_FFT else pending[:0]), n_windows


def mel_power(samples: np.ndarray, mel_basis: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Uncentred frames of ``samples`` (hop 256) → (frames, 96) mel power rounded to float16."""
    if len(samples) < N_FFT:
        return np.zeros((0, N_MELS), dtype=np.float16)
    from scipy import fft  # float32 real FFT: 3.5 times numpy's on this work (numpy computes float32 slowly)

    frames = sliding_window_view(samples, N_FFT)[::HOP_LENGTH] * window
    parts = fft.rfft(frames, axis=1).view(np.float32)  # real and imaginary parts side by side
    np.square(parts, out=parts)
    power = parts[:, 0::2] + parts[:, 1::2]
    return np.minimum(power @ mel_basis.T, FLOAT16_MAX).astype(np.float16)


def log_compress(power: np.ndarray) -> np.ndarray:
    """musicnn's input scale: log10(10000 · mel + 1), float32."""
    scaled = power.astype(np.float32)
    scaled *= np.float32(10000.0)
    scaled += np.float32(1.0)
    return np.log10(scaled, out=scaled)


def hann_window() -> np.ndarray:
    """The periodic Hann window of ``N_FFT`` samples (torch's and librosa's default), float32."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def patch_starts(n_windows: int, n_frames: int) -> np.ndarray:
    """First frame of the 3-s patch centred on each window (clipped to the track)."""
    centres = (np.arange(n_windows) + 0.5) * FRAMES_PER_WINDOW
    starts = np.floor(centres - PATCH_FRAMES / 2 + 0.5).astype(np.int64)
    return np.clip(starts, 0, max(n_frames - PATCH_FRAMES, 0))


def pool_patches(features: np.ndarray, starts: np.ndarray, length: int,
                 stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Max and mean over frames ``start … start + length`` of (channels, frames) features, per start.

    With ``stride`` > 1 the features hold one value per ``stride`` frames (a strided network's, frame
    ``f`` having value ``features[:, f // stride]``): pooling them is exact without repeating them.
    Means come from cumulative sums (float64). Patches overlap by five sixths: for the maxima, the
    frames are cut where any patch starts or ends, each piece is reduced once, and a patch takes the
    maximum of its few pieces (its piece indices padded by repeating its last one).
    """
    first, last = starts // stride, (starts + length - 1) // stride + 1
    used = features[:, : int(last[-1])]
    sums = np.zeros((len(used), used.shape[1] + 1))
    np.cumsum(used, axis=1, dtype=np.float64, out=sums[:, 1:])
    values = np.concatenate([used, np.zeros((len(used), 1), dtype=used.dtype)], axis=1)

    def sum_before(frame: np.ndarray) -> np.ndarray:  # sum over frames 0 … frame − 1
        index = frame // stride
        return stride * sums[:, index] + (frame - index * stride) * values[:, index]

    mean = ((sum_before(starts + length) - sum_before(starts)) / length).T.astype(np.float32)
    cuts = np.unique(np.concatenate([first, last]))
    piece_max = np.maximum.reduceat(used, cuts[:-1], axis=1)
    first, last = np.searchsorted(cuts, first), np.searchsorted(cuts, last)
    pieces = np.minimum(first[:, None] + np.arange(int((last - first).max())), last[:, None] - 1)
    return piece_max[:, pieces].max(axis=2).T, mean
