"""How well VGMIDI's listeners agree with each other: a human ceiling for the within-piece metric.

VGMIDI's per-measure curves (``dynamic.csv``) are the mean of ~30 listeners. A model scored by the
Pearson r between its curve and that mean cannot expect more than the mean's own reliability allows:

- **split-half**: random halves of a piece's listeners, r between the two halves' mean curves (r_h);
  Spearman–Brown gives the reliability of the whole panel, r_n = 2 r_h / (1 + r_h), and a perfect
  model of the population's mean curve would correlate sqrt(r_n) with the panel's mean: the ceiling.
- **one against the rest**: r of each listener's curve with the mean of the others; what one human,
  used as a model, scores on the metric (a flat listener scores 0, as a flat prediction does).

All functions are pure: ``ratings`` is (listeners, measures). The raw per-listener files are matched to
``dynamic.csv`` by their per-measure mean and standard deviation (``match_piece``), so a transcription
or a piece that is not the one annotated is never used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from queueemo.audio import WINDOW_SECONDS
from queueemo.emotion.training.metrics import pearson

SPLITS = 1000
# dynamic.csv rounds to 4 decimals: a matched piece differs by at most 5e-5 plus float error.
MATCH_TOLERANCE = 1e-4


def spearman_brown(r_half: float, factor: float = 2.0) -> float:
    """Reliability of a panel ``factor`` times as large as the one whose reliability is ``r_half``."""
    return factor * r_half / (1 + (factor - 1) * r_half)


def panel_reliability(r_half: float) -> float:
    """Reliability of the whole panel from the mean split-half r; a negative r (halves that disagree
    more than chance, i.e. noise) counts as 0, where Spearman-Brown would diverge towards -1."""
    return spearman_brown(max(r_half, 0.0))


def ceiling(reliability: float) -> float:
    """Expected r of the population's true mean curve with the panel's mean curve (0 if unreliable)."""
    return float(np.sqrt(reliability)) if reliability > 0 else 0.0


def split_half(ratings: np.ndarray, rng: np.random.Generator, splits: int = SPLITS,
               transform: Callable[[np.ndarray], np.ndarray] | None = None) -> float:
    """Mean over random splits of the Pearson r between the two halves' mean curves.

    With an odd panel one half has the extra listener. ``transform`` maps a mean curve before the
    correlation (e.g. interpolation to 0.5-s windows).
    """
    ratings = np.asarray(ratings, dtype=np.float64)
    n = len(ratings)
    if n < 2:
        raise ValueError("split-half needs at least two listeners")
    transform = transform or (lambda curve: curve)
    values = []
    for _ in range(splits):
        order = rng.permutation(n)
        first, second = ratings[order[: n // 2]].mean(0), ratings[order[n // 2:]].mean(0)
        values.append(pearson(transform(first), transform(second)))
    return float(np.mean(values))


def one_against_rest(ratings: np.ndarray) -> np.ndarray:
    """Per listener, the Pearson r of their curve with the mean curve of the other listeners."""
    ratings = np.asarray(ratings, dtype=np.float64)
    n = len(ratings)
    if n < 2:
        raise ValueError("one-against-rest needs at least two listeners")
    total = ratings.sum(0)
    return np.array([pearson(ratings[i], (total - ratings[i]) / (n - 1)) for i in range(n)])


def _pooled_r(pieces: list[np.ndarray], draws: int, weights: list[np.ndarray] | None,
              pair: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean over ``draws`` of the (weighted) r between two curves concatenated over pieces, ``pair``
    giving each piece's two curves from its listeners' ratings."""
    weight = np.concatenate(weights) if weights is not None else None
    values = []
    for _ in range(draws):
        firsts, seconds = zip(*(pair(ratings) for ratings in pieces), strict=True)
        values.append(weighted_pearson(np.concatenate(firsts), np.concatenate(seconds), weight))
    return float(np.mean(values))


def pooled_split_half(pieces: list[np.ndarray], rng: np.random.Generator, splits: int = SPLITS,
                      weights: list[np.ndarray] | None = None) -> float:
    """Split-half r of the curves of all pieces concatenated (the between-piece figure): listeners are
    split within each piece, the halves' means concatenated and correlated; ``weights`` per measure
    (e.g. its duration, so each piece counts as the windows it yields) make it a weighted r."""
    def halves(ratings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        order = rng.permutation(len(ratings))
        half = len(ratings) // 2
        return ratings[order[:half]].mean(0), ratings[order[half:]].mean(0)

    return _pooled_r(pieces, splits, weights, halves)


def pooled_one_against_rest(pieces: list[np.ndarray], rng: np.random.Generator, draws: int = SPLITS,
                            weights: list[np.ndarray] | None = None) -> float:
    """Mean r, over draws, of one random listener per piece (concatenated) with the other listeners'
    means: one human per piece, scored as the pooled metric scores a model."""
    def one_and_rest(ratings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        i = rng.integers(len(ratings))
        return ratings[i], np.delete(ratings, i, axis=0).mean(0)

    return _pooled_r(pieces, draws, weights, one_and_rest)


def weighted_pearson(x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> float:
    """Pearson r with optional non-negative weights per point; 0 when either side is constant."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    w = np.ones_like(x) if weight is None else np.asarray(weight, dtype=np.float64)
    w = w / w.sum()
    dx, dy = x - (w * x).sum(), y - (w * y).sum()
    vx, vy = (w * dx * dx).sum(), (w * dy * dy).sum()
    if vx < 1e-24 or vy < 1e-24:
        return 0.0
    return float((w * dx * dy).sum() / np.sqrt(vx * vy))


@dataclass(frozen=True)
class Annotated:
    """One piece's rows of ``dynamic.csv``: per-measure mean and std over ``raters`` listeners."""

    piece: str
    raters: int
    mean: np.ndarray  # (measures, 2) arousal, valence
    std: np.ndarray  # (measures, 2)
    starts: np.ndarray  # (measures,) seconds
    ends: np.ndarray


@dataclass(frozen=True)
class Match:
    """The annotated piece whose mean and std a raw piece reproduces, and how closely."""

    piece: str
    max_delta: float  # max |Δ| over measures of mean and std, arousal and valence
    ddof: int  # the std's delta degrees of freedom that reproduces dynamic.csv


def match_piece(arousal: np.ndarray, valence: np.ndarray, annotated: list[Annotated],
                tolerance: float = MATCH_TOLERANCE) -> Match | None:
    """The annotated piece with as many measures and raters whose mean and std (ddof 0 or 1) equal the
    raw listeners' to within ``tolerance``; None when none does."""
    raw = np.stack([arousal, valence], axis=-1)  # (listeners, measures, 2)
    best: Match | None = None
    for piece in annotated:
        if piece.raters != raw.shape[0] or len(piece.mean) != raw.shape[1]:
            continue
        for ddof in (0, 1):
            delta = max(np.abs(raw.mean(0) - piece.mean).max(),
                        np.abs(raw.std(0, ddof=ddof) - piece.std).max())
            if delta <= tolerance and (best is None or delta < best.max_delta):
                best = Match(piece.piece, float(delta), ddof)
    return best


def windows(curve: np.ndarray, starts: np.ndarray, ends: np.ndarray,
            seconds: float = WINDOW_SECONDS) -> np.ndarray:
    """A per-measure curve at the centres of ``seconds`` windows, interpolated linearly between measure
    centres as the training targets are (``datasets._window_targets``, without the stretch to the
    rendered length, which changes no correlation)."""
    n = round(float(ends[-1]) / seconds)
    return np.interp((np.arange(n) + 0.5) * seconds, (starts + ends) / 2, curve)
