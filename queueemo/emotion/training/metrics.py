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
    return {
        "quadrant_accuracy": float(np.mean([p == q for p, q in zip(predicted, quadrants, strict=True)])),
        "arousal_sign_accuracy": float(np.mean(np.sign(means[:, 0] + 1e-12) == signs[:, 0])),
        "valence_sign_accuracy": float(np.mean(np.sign(means[:, 1] + 1e-12) == signs[:, 1])),
        "clips": len(quadrants),
    }
