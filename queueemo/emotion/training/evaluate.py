"""Held-out evaluation of the shipped (or any) weights against baselines measured in the same run.

Clip model on the *test* split (never used for training or early stopping): per-window RMSE, Pearson r
and CCC on vgmidi; quadrant accuracy and per-dimension sign accuracy on 4q, from the **mean prediction
over the excerpt's windows**. Baselines: a mean predictor (training mean) and a ridge regression on the
window's mean log-mel (fit on the training split, regularisation chosen on validation).
Forecaster on emomusic test songs: MSE at 1, 4 and 10 steps against persistence and linear extrapolation.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from queueemo.emotion.forecast import load_weights, rollout
from queueemo.emotion.inference import load_clip_model, predict_features
from queueemo.emotion.inference_v2 import load_clip_v2
from queueemo.emotion.training.datasets import QUADRANT_SIGNS, Curve, Track
from queueemo.emotion.training.metrics import (
    change_report,
    quadrant_report,
    regression_report,
    within_song_r,
)
from queueemo.emotion.training.train_clip_v2 import make_mix
from queueemo.emotion.training.train_forecaster import HORIZONS, examples, horizon_mse

RIDGE_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0)
# 4q quadrant labels become these per-window targets for the ridge baseline (quadrant centroids).
CENTROID = 0.5


def _window_inputs(features: np.ndarray) -> np.ndarray:
    """Per-window ridge input: the mean log-mel (seed) or the embedding itself (v2)."""
    features = features.astype(np.float32)
    return features if features.ndim == 2 else features.mean(axis=1)


def _window_means(tracks: list[Track]) -> np.ndarray:
    return np.concatenate([_window_inputs(t.features) for t in tracks])


def _window_targets(tracks: list[Track]) -> np.ndarray:
    parts = []
    for track in tracks:
        if track.targets is not None:
            parts.append(track.targets)
        else:
            centroid = CENTROID * np.array(QUADRANT_SIGNS[track.quadrant], dtype=np.float32)
            parts.append(np.repeat(centroid[None], len(track.features), axis=0))
    return np.concatenate(parts)


class Ridge:
    """Closed-form ridge regression on standardised inputs (the baseline, not the product)."""

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha

    def fit(self, x: np.ndarray, y: np.ndarray) -> Ridge:
        self.mean, self.std = x.mean(0), x.std(0) + 1e-6
        z = np.hstack([(x - self.mean) / self.std, np.ones((len(x), 1))])
        penalty = self.alpha * np.eye(z.shape[1])
        penalty[-1, -1] = 0.0
        self.coef = np.linalg.solve(z.T @ z + penalty, z.T @ y)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = np.hstack([(x - self.mean) / self.std, np.ones((len(x), 1))])
        return np.clip(z @ self.coef, -1.0, 1.0)


def _fit_ridge(train: list[Track], val: list[Track]) -> Ridge:
    x, y = _window_means(train), _window_targets(train)
    xv, yv = _window_means(val), _window_targets(val)
    fitted = [Ridge(alpha).fit(x, y) for alpha in RIDGE_ALPHAS]
    return min(fitted, key=lambda model: float(np.mean((model.predict(xv) - yv) ** 2)))


MIXES = 300
MIX_HALF = 12  # windows (6 s) of each clip in a constructed mix


def _mixes(clips: list[Track], predict: Callable[[np.ndarray], np.ndarray]) -> dict[str, float]:
    """Change-point tracking on joins of two test clips from different quadrants (fixed pairs)."""
    rng = np.random.default_rng(0)
    halves, signs = [], []
    while len(halves) < MIXES:
        a, b = (clips[i] for i in rng.integers(0, len(clips), size=2))
        if a.quadrant == b.quadrant or min(len(a.features), len(b.features)) < MIX_HALF:
            continue
        features, sign = make_mix(a, b, MIX_HALF, rng)
        halves.append(predict(features).reshape(2, MIX_HALF, 2).mean(axis=1))
        signs.append(sign.reshape(2, MIX_HALF, 2)[:, 0])
    return change_report(np.stack(halves), np.stack(signs))


def _clip_rows(
    name: str, predict: Callable[[np.ndarray], np.ndarray], curves: list[Track], clips: list[Track]
) -> dict:
    per_piece = [predict(t.features) for t in curves]
    means = np.stack([predict(t.features).mean(0) for t in clips])
    return {
        "name": name,
        "vgmidi": regression_report(np.concatenate(per_piece), np.concatenate([t.targets for t in curves])),
        "vgmidi_within": within_song_r(per_piece, [t.targets for t in curves]),
        "4q": quadrant_report(means, [t.quadrant for t in clips]),
        "mixes": _mixes(clips, predict),
    }


def _predictor(front: str, model_dir: Path | None) -> tuple[str, Callable[[np.ndarray], np.ndarray]]:
    if front != "seed":
        model_v2, version = load_clip_v2(model_dir, front)
        return f"{front}/{version}", lambda features: predict_features(model_v2, features)
    model, version = load_clip_model(model_dir)
    return f"seed/{version}", lambda features: predict_features(model, features)


def evaluate_clip(
    curves: dict[str, list[Track]], clips: dict[str, list[Track]], model_dir: Path | None = None,
    front: str = "seed",
) -> list[dict]:
    """Rows for a clip model (``front``: seed, v2 or v2-lite), the mean predictor and a ridge baseline on the
    same inputs, on the test split."""
    name, predict = _predictor(front, model_dir)
    torch.set_grad_enabled(False)
    train = curves["train"] + clips["train"]
    mean = _window_targets(train).mean(0)
    ridge = _fit_ridge(train, curves["val"] + clips["val"])
    inputs = {"seed": "mean log-mel", "v2": "musicnn+descriptors"}.get(front, "student+desc.")
    test_curves, test_clips = curves["test"], clips["test"]
    rows = [
        _clip_rows(name, predict, test_curves, test_clips),
        _clip_rows(f"{front}: mean predictor", lambda f: np.repeat(mean[None], len(f), 0),
                   test_curves, test_clips),
        _clip_rows(f"{front}: ridge on {inputs} (alpha {ridge.alpha:g})",
                   lambda f: ridge.predict(_window_inputs(f)), test_curves, test_clips),
    ]
    return rows


def model_trajectories(tracks: list[Track], model_dir: Path | None = None, front: str = "v2") -> list[Curve]:
    """A clip model's trajectories of held-out recordings, as curves for the forecaster."""
    _, predict = _predictor(front, model_dir)
    return [Curve(t.key, t.group, predict(t.features)) for t in tracks]


def evaluate_forecaster(curves: list[Curve], model_dir: Path | None = None) -> list[dict]:
    """Rows for the forecaster, persistence and linear extrapolation on held-out 2 Hz curves."""
    _, info = load_weights(model_dir)
    history, future = examples(curves, int(info["config"]["context"]), max(HORIZONS))
    predicted = rollout(history, max(HORIZONS), model_dir)
    version = info["version"]
    steps = np.arange(1, max(HORIZONS) + 1)[None, :, None]
    last, slope = history[:, -1:], history[:, -1:] - history[:, -2:-1]
    return [
        {"name": version, "mse": horizon_mse(predicted, future), "sequences": len(history)},
        {"name": "persistence", "mse": horizon_mse(np.repeat(last, max(HORIZONS), 1), future)},
        {"name": "linear extrapolation",
         "mse": horizon_mse(np.clip(last + slope * steps, -1, 1), future)},
    ]


def format_report(clip_rows: list[dict], forecasts: dict[str, list[dict]], counts: dict[str, int]) -> str:
    """The evaluation as a plain-text table (what `queueemo evaluate` prints)."""
    lines = [
        "Held-out test split (disjoint by piece / artist): "
        + ", ".join(f"{k} {v}" for k, v in counts.items()),
        "",
        "Clip model — vgmidi, per 0.5 s window (within: mean of per-piece r)",
        f"{'model':<46} {'RMSE a':>7} {'r a':>6} {'CCC a':>6} {'RMSE v':>7} {'r v':>6} {'CCC v':>6}"
        f" {'within a':>8} {'within v':>8}",
    ]
    for row in clip_rows:
        a, v = row["vgmidi"]["arousal"], row["vgmidi"]["valence"]
        within = row["vgmidi_within"]
        lines.append(
            f"{row['name']:<46} {a['rmse']:7.3f} {a['r']:6.3f} {a['ccc']:6.3f} "
            f"{v['rmse']:7.3f} {v['r']:6.3f} {v['ccc']:6.3f} "
            f"{within['arousal']:8.3f} {within['valence']:8.3f}"
        )
    lines += ["", "Clip model — 4q, mean prediction over each excerpt (recall per quadrant)",
              f"{'model':<46} {'quadrant':>9} {'sign a':>7} {'sign v':>7}"
              f" {'Q1':>5} {'Q2':>5} {'Q3':>5} {'Q4':>5}"]
    for row in clip_rows:
        q = row["4q"]
        recalls = " ".join(f"{q.get(f'recall_Q{k}', 0.0):5.2f}" for k in range(1, 5))
        lines.append(
            f"{row['name']:<46} {q['quadrant_accuracy']:9.3f} {q['arousal_sign_accuracy']:7.3f} "
            f"{q['valence_sign_accuracy']:7.3f} {recalls}"
        )
    mixes = clip_rows[0]["mixes"]["mixes"]
    lines += ["", f"Clip model — {mixes} constructed mixes of two 4q test clips (6 s + 6 s, different "
              "quadrants)", f"{'model':<46} {'moves a':>8} {'moves v':>8} {'half quadrant':>14}"]
    for row in clip_rows:
        m = row["mixes"]
        lines.append(f"{row['name']:<46} {m['direction_arousal']:8.3f} {m['direction_valence']:8.3f} "
                     f"{m['half_quadrant']:14.3f}")
    for label, forecast_rows in forecasts.items():
        lines += ["", f"Forecaster — {label}, MSE (mean over arousal and valence)",
                  f"{'model':<46} {'1 step':>8} {'4 steps':>8} {'10 steps':>8}"]
        for row in forecast_rows:
            m = row["mse"]
            lines.append(f"{row['name']:<46} {m['h1']:8.5f} {m['h4']:8.5f} {m['h10']:8.5f}")
        gains = [1 - forecast_rows[0]["mse"][h] / forecast_rows[1]["mse"][h] for h in ("h1", "h4", "h10")]
        lines.append("forecaster vs persistence at 1 / 4 / 10 steps: "
                     + " / ".join(f"{g:+.1%}" for g in gains) + " lower MSE")
    return "\n".join(lines)
