"""Pure summaries of an emotion trajectory: opening, closing and mean emotion, Russell quadrant.

One definition, used by the index (the picker's opening emotion), ``queueemo analyze`` and evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

QUADRANT_NAMES = {
    "Q1": "happy/exuberant",
    "Q2": "angry/anxious",
    "Q3": "sad/depressed",
    "Q4": "calm/content",
}


def summarise(trajectory: np.ndarray, opening_windows: int, closing_windows: int) -> dict[str, float]:
    """Opening (mean of the first windows), closing (of the last) and overall mean emotion."""
    opening = trajectory[:opening_windows].mean(axis=0)
    closing = trajectory[-closing_windows:].mean(axis=0)
    overall = trajectory.mean(axis=0)
    return {
        "opening_arousal": float(opening[0]), "opening_valence": float(opening[1]),
        "closing_arousal": float(closing[0]), "closing_valence": float(closing[1]),
        "mean_arousal": float(overall[0]), "mean_valence": float(overall[1]),
    }


def block_means(arousal: Sequence[float], valence: Sequence[float], size: int
                ) -> list[tuple[int, float, float]]:
    """``(first window, mean arousal, mean valence)`` of each run of ``size`` windows, the last run
    possibly shorter: a long trajectory condensed for reading."""
    return [(start, sum(arousal[start : start + size]) / len(arousal[start : start + size]),
             sum(valence[start : start + size]) / len(valence[start : start + size]))
            for start in range(0, len(arousal), size)]


def quadrant_of(arousal: float, valence: float) -> str:
    """Russell quadrant of a point (zero counts as positive)."""
    if arousal >= 0:
        return "Q1" if valence >= 0 else "Q2"
    return "Q4" if valence >= 0 else "Q3"
