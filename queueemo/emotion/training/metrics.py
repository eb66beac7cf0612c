"""Evaluation metrics (pure numpy): RMSE, Pearson r, CCC, quadrant and sign accuracy."""

from __future__ import annotations

import numpy as np

from queueemo.emotion.summary import quadrant_of


def rmse(pred: np.ndarray, true: np.ndarray) -> float:
    """Root mean squared error."""
    return float(np.sqrt(np.mean((np.asarray(pred) - np.asarray(true)) ** 2)))


def pearson(pred: np.ndarray, true: np.ndarray) -> float:
    """Pearson correlation; 0 when either side is constant (e.g. a mean predictor)."""
    pred, true = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    if pred.std() < 1e-12 or true.std() < 1e-12:
        return 0.0
    return float(np.corrcoef(pred, true)[0, 1])


def ccc(pred: np.ndarray, true: np.ndarray) -> float:
    """Lin's concordance correlation coefficient: agreement in correlation, mean and scale."""
    pred, true = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    covariance = np.mean((pred - pred.mean()) * (true - true.mean()))
    denominator = pred.var() + true.var() + (pred.mean() - true.mean()) ** 2
    return float(2 * covariance / denominator) if denominator > 0 else 0.0


def regression_report(pred: np.ndarray, true: np.ndarray) -> dict[str, dict[str, float]]:
    """Per-dimension RMSE, r and CCC for (n, 2) arousal/valence arrays."""
    report = {}
    for index, name in enumerate(("arousal", "valence")):
        report[name] = {
            "rmse": rmse(pred[:, index], true[:, index]),
            "r": pearson(pred[:, index], true[:, index]),
            "ccc": ccc(pred[:, index], true[:, index]),
        }
    return report


def quadrant_report(means: np.ndarray, quadrants: list[str]) -> dict[str, float]:
    """Accuracy of quadrants (from per-clip mean predictions) and per-dimension sign accuracy."""
    from queueemo.emotion.training.datasets import QUADRANT_SIGNS

    signs = np.array([QUADRANT_SIGNS[q] for q in quadrants])
    predicted = [quadrant_of(a, v) for a, v in means]
    recall = {f"recall_{k}": float(np.mean([p == q for p, q in zip(predicted, quadrants, strict=True)
                                            if q == k])) for k in sorted(set(quadrants))}
    return {
        **recall,
        "quadrant_accuracy": float(np.mean([p == q for p, q in zip(predicted, quadrants, strict=True)])),
        "arousal_sign_accuracy": float(np.mean(np.sign(means[:, 0] + 1e-12) == signs[:, 0])),
        "valence_sign_accuracy": float(np.mean(np.sign(means[:, 1] + 1e-12) == signs[:, 1])),
        "clips": len(quadrants),
    }


def within_song_r(predicted: list[np.ndarray], true: list[np.ndarray]) -> dict[str, float]:
    """Mean over songs of the per-song Pearson r (how well the model follows a song's own course)."""
    report = {}
    for index, name in enumerate(("arousal", "valence")):
        values = [pearson(p[:, index], t[:, index]) for p, t in zip(predicted, true, strict=True)
                  if t[:, index].std() > 1e-6]
        report[name] = float(np.mean(values)) if values else 0.0
    return report


def validation_report(per_piece: list[np.ndarray], targets: list[np.ndarray], means: np.ndarray,
                      quadrants: list[str]) -> dict:
    """The clip model's held-out report: vgmidi per window and within each piece (``per_piece``
    predictions against ``targets``), 4q per clip (``means``, one predicted row per clip); a source
    with nothing in it is left out."""
    report: dict = {}
    if per_piece:
        report["vgmidi"] = regression_report(np.concatenate(per_piece), np.concatenate(targets))
        report["vgmidi_within"] = within_song_r(per_piece, targets)
    if quadrants:
        report["4q"] = quadrant_report(means, quadrants)
    return report


def change_report(halves: np.ndarray, signs: np.ndarray) -> dict[str, float]:
    """Constructed mixes: (n, 2 halves, 2) mean predictions and label signs.

    ``direction``: for each dimension whose label changes at the join, whether the prediction moves
    the same way; ``half_quadrant``: quadrant accuracy of each half's mean.
    """
    moved = np.sign(halves[:, 1] - halves[:, 0])
    changed = signs[:, 1] != signs[:, 0]
    wanted = np.sign(signs[:, 1] - signs[:, 0])
    return {
        "direction_arousal": float(np.mean((moved == wanted)[:, 0][changed[:, 0]])),
        "direction_valence": float(np.mean((moved == wanted)[:, 1][changed[:, 1]])),
        "half_quadrant": float(np.mean(np.all(np.sign(halves + 1e-12) == signs, axis=2))),
        "mixes": len(halves),
    }
