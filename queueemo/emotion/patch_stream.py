"""Stream a track's mel frames through a patch network: one embedding per 0.5-s window, bounded memory.

A *patch network* (musicnn, or the student distilled from it) computes features per mel frame with a
convolutional front end, then pools the 3-s patch centred on each window (max and mean) and turns the
pooled vectors into the window's embedding. Its features depend on ``receptive_margin`` frames either
side, and a strided network must see frames at the same phase (a multiple of ``stride``) as in a
whole-track pass. Windows are embedded as soon as their patch and its context have been decoded, in
passes of ``chunk_windows``, and frames no later window needs are dropped, so the streamed embeddings
equal a whole-track pass and memory does not grow with track length. numpy only: torch networks are
driven through an adapter (``embedding``), the torch-free runtime directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np

from queueemo.emotion.musicnn_input import N_MELS, PATCH_FRAMES, log_compress, patch_starts, pool_patches


class PatchNetwork(Protocol):
    """What ``embed_stream`` needs from a network."""

    receptive_margin: int
    stride: int
    embedding_size: int

    def varying_features(self, log_mel: np.ndarray) -> np.ndarray:
        """(frames, 96) log-mel → (channels, ceil(frames / stride)) float32 features, one per ``stride``
        frames (the first at frame 0)."""

    def embed_varying(self, maximum: np.ndarray, mean: np.ndarray) -> np.ndarray:
        """Pooled (n, channels) max and mean → (n, embedding_size) float32."""


def _embed_windows(network: PatchNetwork, power: np.ndarray, base: int, starts: np.ndarray,
                   length: int, n_frames: int) -> np.ndarray:
    """Embeddings of the patches at global frames ``starts`` from mel frames ``base`` … onwards."""
    lo = max(0, int(starts[0]) - network.receptive_margin) // network.stride * network.stride
    hi = min(n_frames, int(starts[-1]) + length + network.receptive_margin)
    features = network.varying_features(log_compress(power[lo - base : hi - base]))
    maximum, mean = pool_patches(features, starts - lo, length, network.stride)
    return network.embed_varying(maximum, mean)


def embed_mel(network: PatchNetwork, power: np.ndarray, n_windows: int, chunk_windows: int) -> np.ndarray:
    """(frames, 96) float16 mel power of a whole track → (n_windows, embedding) in one go per chunk."""
    n_frames = len(power)
    length = min(PATCH_FRAMES, n_frames)
    starts = patch_starts(n_windows, n_frames)
    return np.concatenate([_embed_windows(network, power, 0, starts[i : i + chunk_windows], length, n_frames)
                           for i in range(0, n_windows, chunk_windows)])


def embed_stream(network: PatchNetwork, mel_chunks: Iterator[tuple[np.ndarray, int]],
                 chunk_windows: int) -> np.ndarray:
    """(next (frames, 96) float16 mel power, windows so far) per decoded block → (n_windows, embedding),
    equal to ``embed_mel`` of the whole track."""
    margin, stride = network.receptive_margin, network.stride
    buffer = np.zeros((0, N_MELS), dtype=np.float16)
    base = done = n_windows = 0
    out: list[np.ndarray] = []
    for mel, n_windows in mel_chunks:
        buffer = np.concatenate([buffer, mel])
        available = base + len(buffer)
        # Unclipped starts are final for windows whose patch and context end inside the frames so far.
        starts = patch_starts(n_windows, 1 << 62)[done:]
        ready = int(np.sum(starts + PATCH_FRAMES + margin <= available))
        ready -= ready % chunk_windows
        for i in range(0, ready, chunk_windows):
            out.append(_embed_windows(network, buffer, base, starts[i : i + chunk_windows],
                                      PATCH_FRAMES, available))
        done += ready
        if done < n_windows:  # keep what the remaining windows (possibly clipped at the end) need
            keep = max(0, min(int(starts[ready]), available - PATCH_FRAMES) - margin) // stride * stride
            buffer, base = buffer[keep - base :], keep
    n_frames = base + len(buffer)
    if done < n_windows:
        starts = patch_starts(n_windows, n_frames)[done:]
        length = min(PATCH_FRAMES, n_frames)
        for i in range(0, len(starts), chunk_windows):
            out.append(_embed_windows(network, buffer, base, starts[i : i + chunk_windows], length, n_frames))
    return np.concatenate(out) if out else np.zeros((0, network.embedding_size), dtype=np.float32)
