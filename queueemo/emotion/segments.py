"""Long tracks through the context LSTM: half-overlapping segments, blended back per window.

The context LSTM was trained on crops of ``segment_windows`` windows; analysis runs it over segments of
that length overlapping by half, and each window's value is a triangular-weighted blend of the segments
that hold it, so memory does not grow with track length. Shared by the torch and numpy runtimes.
"""

from __future__ import annotations

import numpy as np


def segment_starts(n_windows: int, length: int) -> list[int]:
    """Start indices of half-overlapping segments that cover ``n_windows``."""
    if n_windows <= length:
        return [0]
    starts = list(range(0, n_windows - length + 1, length // 2))
    if starts[-1] != n_windows - length:
        starts.append(n_windows - length)
    return starts


def blend_segments(predictions: np.ndarray, starts: list[int], n_windows: int) -> np.ndarray:
    """(segments, length, 2) predictions at ``starts`` → (n_windows, 2) float32, triangular weights."""
    length = predictions.shape[1]
    weight = np.minimum(np.arange(1, length + 1), np.arange(length, 0, -1)).astype(np.float32)
    total = np.zeros((n_windows, 2), dtype=np.float64)
    weights = np.zeros((n_windows, 1), dtype=np.float64)
    for start, prediction in zip(starts, predictions, strict=True):
        total[start : start + length] += prediction * weight[:, None]
        weights[start : start + length] += weight[:, None]
    return (total / weights).astype(np.float32)
