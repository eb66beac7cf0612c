"""Train the clip model on vgmidi (continuous A/V) and 4q (quadrant labels), mixed in every batch.

Losses: vgmidi windows regress on the interpolated per-measure curve (MSE plus 1 − CCC per dimension:
MSE alone lets a model hug the mean of a low-variance target). A quadrant label (4q, emopia) only says on
which side of zero each dimension lies for the whole excerpt, so its loss is a hinge on the crop's mean
prediction per dimension, ``relu(margin − sign · mean)``: it pushes the mean past the margin on the
right side and invents no magnitude or shape the label does not contain.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from queueemo.audio import feature_parameters
from queueemo.emotion.inference import CLIP_NAME, predict_features
from queueemo.emotion.network import ClipConfig, ClipModel
from queueemo.emotion.training.assets import save_asset
from queueemo.emotion.training.augment import augment
from queueemo.emotion.training.datasets import QUADRANT_SIGNS, Track
from queueemo.emotion.training.early_stopping import EarlyStopping
from queueemo.emotion.training.metrics import validation_report


@dataclass(frozen=True)
class ClipTraining:
    """Hyper-parameters of a clip training run."""

    seed: int = 1234
    crop_windows: int = 32
    curve_crops: int = 12
    clip_crops: int = 6  # per quadrant-labelled data set
    batches_per_epoch: int = 100
    max_epochs: int = 50
    patience: int = 10
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    hinge_margin: float = 0.3
    quadrant_weight: float = 0.5
    ccc_weight: float = 0.5


def _normalisation(tracks: list[Track]) -> tuple[torch.Tensor, torch.Tensor]:
    total = np.zeros(128)
    squares = np.zeros(128)
    count = 0
    for track in tracks:
        frames = track.features.reshape(-1, 128).astype(np.float64)
        total += frames.sum(0)
        squares += (frames**2).sum(0)
        count += len(frames)
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 1e-6))
    return torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)


def _crop(track: Track, length: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    start = int(rng.integers(0, len(track.features) - length + 1))
    return track.features[start : start + length], start


def _batch(tracks: list[Track], count: int, length: int, rng: np.random.Generator):
    chosen = [tracks[i] for i in rng.integers(0, len(tracks), size=count)]
    crops, targets = [], []
    for track in chosen:
        features, start = _crop(track, length, rng)
        crops.append(features)
        if track.targets is not None:
            targets.append(track.targets[start : start + length])
        else:
            targets.append(np.array(QUADRANT_SIGNS[track.quadrant], dtype=np.float32))
    return torch.from_numpy(np.stack(crops)), torch.from_numpy(np.stack(targets))


def validate(model: ClipModel, curves: list[Track], clips: list[Track]) -> dict:
    """Metrics on held-out vgmidi pieces (per window) and 4q excerpts (per clip mean)."""
    model.eval()
    per_piece = [predict_features(model, t.features) for t in curves]
    means = np.array([predict_features(model, t.features).mean(0) for t in clips]).reshape(-1, 2)
    return validation_report(per_piece, [t.targets for t in curves], means, [t.quadrant for t in clips])


def score(report: dict) -> float:
    """One number for early stopping: mean vgmidi r plus 4q quadrant accuracy."""
    vg = report.get("vgmidi", {})
    r = (vg.get("arousal", {}).get("r", 0.0) + vg.get("valence", {}).get("r", 0.0)) / 2
    return r + report.get("4q", {}).get("quadrant_accuracy", 0.0)


def _ccc_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 − concordance correlation, averaged over arousal and valence, over all windows of a batch."""
    p, t = predicted.reshape(-1, 2), target.reshape(-1, 2)
    covariance = ((p - p.mean(0)) * (t - t.mean(0))).mean(0)
    denominator = p.var(0, unbiased=False) + t.var(0, unbiased=False) + (p.mean(0) - t.mean(0)) ** 2
    return (1 - 2 * covariance / (denominator + 1e-8)).mean()


def train_clip(
    *,
    curves: dict[str, list[Track]],
    clips: dict[str, list[Track]],
    extra_clips: list[Track] | None = None,
    out_dir: Path,
    settings: ClipTraining | None = None,
    network: ClipConfig | None = None,
    report: Callable[[str], None] = lambda _: None,
) -> dict:
    """Train, early-stop on the validation split, write ``clip.pt`` + ``clip.json``; return metrics.

    ``clips`` (4q) are real recordings and count in validation; ``extra_clips`` (emopia's training
    split) are further quadrant-labelled crops, sampled as a domain of their own.
    """
    settings, network = settings or ClipTraining(), network or ClipConfig()
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    length = settings.crop_windows
    train_curves = [t for t in curves["train"] if len(t.features) >= length]
    train_clips = [t for t in clips["train"] if len(t.features) >= length]
    clip_domains = [train_clips] + ([[t for t in extra_clips if len(t.features) >= length]]
                                    if extra_clips else [])
    model = ClipModel(network)
    model.segment_windows = length
    model.mel_mean, model.mel_std = _normalisation(train_curves + [t for d in clip_domains for t in d])
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    stopper = EarlyStopping(settings.patience)
    history = []
    for epoch in range(1, settings.max_epochs + 1):
        model.train()
        started, losses = time.monotonic(), []
        for _ in range(settings.batches_per_epoch):
            x_curve, y_curve = _batch(train_curves, settings.curve_crops, length, rng)
            labelled = [_batch(domain, settings.clip_crops, length, rng) for domain in clip_domains]
            x_clip = torch.cat([x for x, _ in labelled])
            y_clip = torch.cat([y for _, y in labelled])
            predicted = model(augment(torch.cat([x_curve, x_clip]), generator))
            curve_part, clip_part = predicted[: len(x_curve)], predicted[len(x_curve) :]
            regression = torch.mean((curve_part - y_curve) ** 2)
            regression = regression + settings.ccc_weight * _ccc_loss(curve_part, y_curve)
            hinge = torch.relu(settings.hinge_margin - y_clip * clip_part.mean(dim=1)).mean()
            loss = regression + settings.quadrant_weight * hinge
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            losses.append(loss.item())
        metrics = validate(model, curves["val"], clips["val"])
        current = score(metrics)
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "score": current})
        vg, q4 = metrics.get("vgmidi", {}), metrics.get("4q", {})
        report(
            f"epoch {epoch:2d}  loss {np.mean(losses):.4f}  val r(a) {vg['arousal']['r']:.3f} "
            f"r(v) {vg['valence']['r']:.3f}  4q acc {q4['quadrant_accuracy']:.3f}  "
            f"score {current:.3f}  ({time.monotonic() - started:.0f} s)"
        )
        if stopper.update(-current, model, metrics):  # a higher score is better
            report(f"early stop: no improvement for {settings.patience} epochs")
            break
    assert stopper.best_state is not None
    return save_asset(out_dir, CLIP_NAME, stopper.best_state, {
        "features": feature_parameters(),
        "config": network.to_dict(),
        "segment_windows": length,
        "training": asdict(settings),
        "validation": stopper.best_metrics,
        "history": history,
    })
