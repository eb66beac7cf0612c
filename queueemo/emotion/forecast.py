"""The forecaster at run time, in numpy: an LSTM(2 → 32) and a linear layer are ten lines of algebra,
and leaving torch out keeps ``queueemo next`` and the daemon fast to start and small in memory.

The weights are the ``state_dict`` of ``network.Forecaster`` saved as ``forecaster.npz``; a test checks
that this forward pass equals the torch module's.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from queueemo.assets import asset_path, read_info
from queueemo.emotion.numpy_ops import sigmoid
from queueemo.errors import ModelError

NAME = "forecaster"


@lru_cache(maxsize=4)
def load_weights(folder: Path | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """The forecaster's arrays and its JSON description."""
    info = read_info(NAME, folder)
    path = asset_path(f"{NAME}.npz", folder)
    try:
        with np.load(path) as archive:
            weights = {key: archive[key].astype(np.float64) for key in archive.files}
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} is damaged: {exc}") from exc
    expected = {"lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0", "lstm.bias_hh_l0",
                "head.weight", "head.bias"}
    if set(weights) != expected:
        raise ModelError(f"{path} does not hold forecaster weights (has {sorted(weights)})")
    return weights, info


def unit(history: np.ndarray, config: dict) -> np.ndarray:
    """(batch, 1, 2) step size a history is measured in (``Forecaster.unit``)."""
    if not config.get("normalise", False):
        return np.full_like(history[:, :1], 1.0 / float(config["scale"]))
    steps = np.abs(np.diff(history, axis=1)).mean(axis=1, keepdims=True)
    return np.maximum(steps, float(config["floor"]))


def step(weights: dict[str, np.ndarray], history: np.ndarray, config: dict) -> np.ndarray:
    """Next point from (batch, context, 2) histories: the torch ``Forecaster.forward`` in numpy."""
    last, scale = history[:, -1], unit(history, config)
    inputs = (history - last[:, None]) / scale
    hidden_size = weights["lstm.weight_hh_l0"].shape[1]
    h = np.zeros((len(history), hidden_size))
    c = np.zeros_like(h)
    bias = weights["lstm.bias_ih_l0"] + weights["lstm.bias_hh_l0"]
    for t in range(inputs.shape[1]):
        gates = inputs[:, t] @ weights["lstm.weight_ih_l0"].T + h @ weights["lstm.weight_hh_l0"].T + bias
        i, f, g, o = np.split(gates, 4, axis=1)  # torch's gate order
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
    delta = h @ weights["head.weight"].T + weights["head.bias"]
    return np.clip(last + delta * scale[:, 0], -1.0, 1.0)


def forecast_points(history: np.ndarray, steps: int = 1, folder: Path | None = None) -> np.ndarray:
    """(steps, 2) forecast from an (n, 2) history at 2 Hz (left-padded with its first point if n < 10)."""
    points = np.asarray(history, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
        raise ValueError(f"history must have shape (n ≥ 1, 2), not {points.shape}")
    if steps < 1:
        raise ValueError("steps must be ≥ 1")
    context = int(load_weights(folder)[1]["config"]["context"])
    if len(points) < context:
        points = np.concatenate([np.repeat(points[:1], context - len(points), axis=0), points])
    return rollout(np.clip(points[-context:], -1.0, 1.0)[None], steps, folder)[0].astype(np.float32)


def rollout(history: np.ndarray, steps: int, folder: Path | None = None) -> np.ndarray:
    """Batched multi-step forecast for evaluation: (m, context, 2) → (m, steps, 2)."""
    weights, info = load_weights(folder)
    window = np.asarray(history, dtype=np.float64)
    out = []
    for _ in range(steps):
        nxt = step(weights, window, info["config"])
        out.append(nxt)
        window = np.concatenate([window[:, 1:], nxt[:, None]], axis=1)
    return np.stack(out, axis=1)
