"""Train the next-value forecaster on emomusic's continuous 2 Hz curves, split by artist, and (if given)
on a clip model's trajectories of the training audio: what it reads at pick time.

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
    # Errors measured in each history's own step size (``Forecaster.unit``), so that jumpy clip-model
    # trajectories do not drown the smooth human curves in the loss.
    relative_loss: bool = False


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


def persistence_ratio(predicted: np.ndarray, history: np.ndarray, future: np.ndarray,
                      steps: int = 4) -> float:
    """MSE / persistence's MSE at ``steps`` ahead (below 1: better than persistence)."""
    still = np.repeat(history[:, -1:], future.shape[1], 1)
    return float(np.mean((predicted[:, steps - 1] - future[:, steps - 1]) ** 2)
                 / np.mean((still[:, steps - 1] - future[:, steps - 1]) ** 2))


def train_forecaster(
    *,
    curves: dict[str, list[Curve]],
    out_dir: Path,
    trajectories: dict[str, list[Curve]] | None = None,
    settings: ForecasterTraining | None = None,
    network: ForecasterConfig | None = None,
    report: Callable[[str], None] = lambda _: None,
) -> dict:
    """Train, early-stop on validation, write ``forecaster.npz`` + ``.json``; return metrics.

    ``curves`` are human annotations; ``trajectories`` (optional) a clip model's outputs on the same
    splits of audio, which is what the forecaster reads at pick time. Training uses both; early
    stopping uses the mean over both kinds of the 4-step MSE relative to persistence
    (``persistence_ratio``), so neither kind can be traded away for the other unnoticed (with human
    curves alone this is the 4-step MSE, scaled).
    """
    settings, network = settings or ForecasterTraining(), network or ForecasterConfig()
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    kinds = {"human": curves, **({"model": trajectories} if trajectories else {})}
    train_parts = [examples(kind["train"], network.context, settings.rollout_steps)
                   for kind in kinds.values()]
    x_train = np.concatenate([x for x, _ in train_parts])
    y_train = np.concatenate([y for _, y in train_parts])
    validation = {name: examples(kind["val"], network.context, max(HORIZONS)) for name, kind in kinds.items()}
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
            error = predicted - future.clamp(-1, 1)
            if settings.relative_loss:
                error = error / model.unit(history.clamp(-1, 1))
            loss = torch.mean(error**2)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        model.eval()
        metrics: dict = {}
        with torch.inference_mode():
            for name, (x_val, y_val) in validation.items():
                predicted = model.rollout(torch.from_numpy(x_val), max(HORIZONS)).numpy()
                metrics[name] = {**horizon_mse(predicted, y_val),
                                 "vs_persistence": persistence_ratio(predicted, x_val, y_val)}
        value = float(np.mean([m["vs_persistence"] for m in metrics.values()]))
        scheduler.step(value)
        report(f"epoch {epoch:3d}  val MSE / persistence "
               + "  ".join(f"{name} {m['vs_persistence']:.4f}" for name, m in metrics.items())
               + f"  ({time.monotonic() - started:.1f} s)")
        if stopper.update(value, model, metrics):
            report(f"early stop at epoch {epoch}: best validation MSE / persistence {stopper.best:.4f}")
            break
    assert stopper.best_state is not None
    return save_asset(out_dir, FORECASTER_NAME, stopper.best_state, {
        "rate_hz": 2,
        "config": network.to_dict(),
        "training": asdict(settings),
        "validation": stopper.best_metrics,
    }, as_numpy=True)
