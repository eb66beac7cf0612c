"""Train the next-value forecaster on emomusic's continuous 2 Hz curves, split by artist.

Each training example is 10 consecutive points and the ``rollout_steps`` points after them; the loss is
the mean squared error of the model's own multi-step rollout, so errors that compound when predictions
are fed back are trained against, not only the one-step error. With ``mirror``, each example is
reflected about its last point per dimension at random (a rise becomes a fall): the model sees relative
histories, so this doubles the shapes it learns from without inventing levels the data never had.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from queueemo.emotion.forecast import NAME as FORECASTER_NAME
from queueemo.emotion.network import Forecaster, ForecasterConfig
from queueemo.emotion.training.assets import save_asset
from queueemo.emotion.training.datasets import Curve
from queueemo.emotion.training.early_stopping import EarlyStopping

HORIZONS = (1, 4, 10)


@dataclass(frozen=True)
class ForecasterTraining:
    """Hyper-parameters of a forecaster training run."""

    seed: int = 1234
    rollout_steps: int = 4
    batch_size: int = 512
    max_epochs: int = 150
    patience: int = 20
    learning_rate: float = 3e-3
    mirror: bool = True


def examples(curves: list[Curve], context: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (history, future) pair in the curves: (m, context, 2) and (m, horizon, 2)."""
    histories, futures = [], []
    for curve in curves:
        points = curve.points.astype(np.float32)
        for start in range(len(points) - context - horizon + 1):
            histories.append(points[start : start + context])
            futures.append(points[start + context : start + context + horizon])
    return np.stack(histories), np.stack(futures)


def horizon_mse(predicted: np.ndarray, future: np.ndarray) -> dict[str, float]:
    """MSE at each reported horizon (averaged over both dimensions)."""
    return {f"h{h}": float(np.mean((predicted[:, h - 1] - future[:, h - 1]) ** 2)) for h in HORIZONS}


def train_forecaster(
    *,
    curves: dict[str, list[Curve]],
    out_dir: Path,
    settings: ForecasterTraining | None = None,
    network: ForecasterConfig | None = None,
    report: Callable[[str], None] = lambda _: None,
) -> dict:
    """Train, early-stop on validation 4-step MSE, write ``forecaster.npz`` + ``.json``; return metrics."""
    settings, network = settings or ForecasterTraining(), network or ForecasterConfig()
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    x_train, y_train = examples(curves["train"], network.context, settings.rollout_steps)
    x_val, y_val = examples(curves["val"], network.context, max(HORIZONS))
    model = Forecaster(network)
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    # Halve the step size when validation stalls: the last gains over persistence are small and slow.
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser, factor=0.5, patience=5)
    stopper = EarlyStopping(settings.patience)
    for epoch in range(1, settings.max_epochs + 1):
        started = time.monotonic()
        model.train()
        order = rng.permutation(len(x_train))
        for begin in range(0, len(order), settings.batch_size):
            index = order[begin : begin + settings.batch_size]
            history, future = torch.from_numpy(x_train[index]), torch.from_numpy(y_train[index])
            if settings.mirror:
                last = history[:, -1:]
                sign = torch.from_numpy(rng.choice([-1.0, 1.0], size=(len(index), 1, 2)).astype(np.float32))
                history, future = last + sign * (history - last), last + sign * (future - last)
            predicted = model.rollout(history.clamp(-1, 1), settings.rollout_steps)
            loss = torch.mean((predicted - future.clamp(-1, 1)) ** 2)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        model.eval()
        with torch.inference_mode():
            predicted = model.rollout(torch.from_numpy(x_val), max(HORIZONS)).numpy()
        metrics = horizon_mse(predicted, y_val)
        scheduler.step(metrics["h4"])
        report(
            f"epoch {epoch:3d}  val MSE h1 {metrics['h1']:.6f}  h4 {metrics['h4']:.6f}  "
            f"h10 {metrics['h10']:.6f}  ({time.monotonic() - started:.1f} s)"
        )
        if stopper.update(metrics["h4"], model, metrics):
            report(f"early stop at epoch {epoch}: best validation h4 MSE {stopper.best:.5f}")
            break
    assert stopper.best_state is not None
    return save_asset(out_dir, FORECASTER_NAME, stopper.best_state, {
        "rate_hz": 2,
        "config": network.to_dict(),
        "training": asdict(settings),
        "validation": stopper.best_metrics,
    }, as_numpy=True)
