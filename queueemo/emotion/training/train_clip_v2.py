"""Train the v2 clip model on cached musicnn embeddings: vgmidi curves, 4q and emopia quadrants, and
constructed mixes with known change points.

Losses as for the seed model (``train_clip``): vgmidi windows regress on the curve (MSE + 1 − CCC), a
quadrant-labelled crop is a hinge on its mean. Within-song dynamics get a third source: a *mix* joins
crops of two clips from different quadrants, and each half's mean is hinged on its own label, so the
model must move when the music does instead of giving one value per song.
Embeddings are fixed (the front end is not trained), so epochs take seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from queueemo.emotion.musicnn_input import audio_settings
from queueemo.emotion.network import ClipEnsembleV2, ClipModelV2, ClipV2Config
from queueemo.emotion.numpy_head import HEAD_FILES
from queueemo.emotion.training.assets import save_asset
from queueemo.emotion.training.datasets import QUADRANT_SIGNS, Track
from queueemo.emotion.training.early_stopping import EarlyStopping
from queueemo.emotion.training.train_clip import _ccc_loss, validate


@dataclass(frozen=True)
class ClipV2Training:
    """Hyper-parameters of a v2 training run."""

    seed: int = 1234
    curve_windows: int = 64
    clip_windows: int = 24
    curve_crops: int = 32
    clip_crops: int = 24  # per quadrant-labelled data set
    mix_crops: int = 16
    batches_per_epoch: int = 25
    max_epochs: int = 60
    patience: int = 8
    learning_rate: float = 1e-3
    weight_decay: float = 0.05
    hinge_margin: float = 0.3
    quadrant_weight: float = 2.0
    mix_weight: float = 0.5
    ccc_weight: float = 0.5
    noise: float = 0.5  # Gaussian noise on the embeddings (× their std), a regulariser
    window_weight: float = 0.0  # per-window squared error of quadrant crops to ±centroid (as the ridge)
    centroid: float = 0.5
    within_weight: float = 0.5  # 1 − Pearson r of each curve crop's own course (its mean removed)
    members: int = 5  # ensemble members, seeds ``seed`` … ``seed + members − 1``


def _crops(tracks: list[Track], count: int, length: int, rng: np.random.Generator):
    features, targets = [], []
    for index in rng.integers(0, len(tracks), size=count):
        track = tracks[index]
        start = int(rng.integers(0, len(track.features) - length + 1))
        features.append(track.features[start : start + length].astype(np.float32))
        targets.append(track.targets[start : start + length] if track.targets is not None
                       else np.array(QUADRANT_SIGNS[track.quadrant], dtype=np.float32))
    return torch.from_numpy(np.stack(features)), torch.from_numpy(np.stack(targets))


def make_mix(
    first: Track, second: Track, half: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Two crops of ``half`` windows from clips of different quadrants, joined; per-window signs."""
    parts, signs = [], []
    for track in (first, second):
        start = int(rng.integers(0, len(track.features) - half + 1))
        parts.append(track.features[start : start + half].astype(np.float32))
        signs.append(np.repeat(np.array(QUADRANT_SIGNS[track.quadrant], np.float32)[None], half, 0))
    return np.concatenate(parts), np.concatenate(signs)


def _mixes(tracks: list[Track], count: int, length: int, rng: np.random.Generator):
    features, signs = [], []
    while len(features) < count:
        a, b = (tracks[i] for i in rng.integers(0, len(tracks), size=2))
        if a.quadrant == b.quadrant:
            continue
        x, y = make_mix(a, b, length // 2, rng)
        features.append(x)
        signs.append(y)
    return torch.from_numpy(np.stack(features)), torch.from_numpy(np.stack(signs))


def within_loss(predicted: torch.Tensor, target: torch.Tensor, min_std: float = 0.02) -> torch.Tensor:
    """1 − Pearson r between each crop's predicted and annotated course, over the crops (per dimension)
    whose annotation moves at all (std ≥ ``min_std``); 0 if none does."""
    p = predicted - predicted.mean(dim=1, keepdim=True)
    t = target - target.mean(dim=1, keepdim=True)
    r = (p * t).sum(1) / (p.norm(dim=1) * t.norm(dim=1) + 1e-6)
    moving = target.std(dim=1) >= min_std
    return (1 - r[moving]).mean() if moving.any() else predicted.sum() * 0.0


def score(report: dict) -> float:
    """One number for early stopping, one term per missed or tight target: 4q quadrant accuracy and
    arousal sign accuracy, vgmidi arousal r and the mean within-piece arousal r."""
    q4, vg = report["4q"], report["vgmidi"]
    return (q4["quadrant_accuracy"] + q4["arousal_sign_accuracy"] + vg["arousal"]["r"]
            + report["vgmidi_within"]["arousal"])


def _normalise(model: ClipModelV2, tracks: list[Track]) -> None:
    """Set the model's input (and descriptor) mean and std from the training windows."""
    stacked = np.concatenate([t.features.astype(np.float64) for t in tracks])
    mean = torch.tensor(stacked.mean(0), dtype=torch.float32)
    std = torch.tensor(stacked.std(0) + 1e-3, dtype=torch.float32)
    size, described = model.config.input_size, model.config.descriptors
    model.input_mean, model.input_std = mean[:size], std[:size]
    if described:
        model.descriptor_mean = mean[size : size + described]
        model.descriptor_std = std[size : size + described]


def _train_member(
    curves: dict[str, list[Track]],
    clips: dict[str, list[Track]],
    domains: list[list[Track]],
    settings: ClipV2Training,
    network: ClipV2Config,
    report: Callable[[str], None],
) -> tuple[dict, dict, list[dict]]:
    """One member trained from ``settings.seed``, early-stopped on validation: (best state, its
    validation metrics, per-epoch history)."""
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    train_curves = [t for t in curves["train"] if len(t.features) >= settings.curve_windows]
    model = ClipModelV2(network)
    model.segment_windows = settings.curve_windows
    _normalise(model, train_curves + [t for d in domains for t in d])
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate,
                                  weight_decay=settings.weight_decay)
    stopper = EarlyStopping(settings.patience)
    history = []

    def noisy(x: torch.Tensor) -> torch.Tensor:  # on the embedding only; descriptors pass unchanged
        size = network.input_size
        embedding = x[..., :size] + settings.noise * model.input_std * torch.randn_like(x[..., :size])
        return torch.cat([embedding, x[..., size:]], dim=-1)

    for epoch in range(1, settings.max_epochs + 1):
        model.train()
        started, losses = time.monotonic(), []
        for _ in range(settings.batches_per_epoch):
            x, y = _crops(train_curves, settings.curve_crops, settings.curve_windows, rng)
            predicted = model(noisy(x))
            loss = torch.mean((predicted - y) ** 2) + settings.ccc_weight * _ccc_loss(predicted, y)
            if settings.within_weight:
                loss = loss + settings.within_weight * within_loss(predicted, y)
            # Quadrant-labelled crops of every domain and the mixes go through one forward pass.
            labelled = [_crops(domain, settings.clip_crops, settings.clip_windows, rng) for domain in domains]
            x_mix, y_mix = _mixes(domains[0], settings.mix_crops, settings.clip_windows, rng)
            x = torch.cat([x for x, _ in labelled] + [x_mix])
            predicted = model(noisy(x))
            n_clips = len(x) - len(x_mix)
            signs = torch.cat([y for _, y in labelled])
            hinge = torch.relu(settings.hinge_margin - signs * predicted[:n_clips].mean(dim=1)).mean()
            window_error = torch.mean((predicted[:n_clips] - settings.centroid * signs[:, None, :]) ** 2)
            halves = predicted[n_clips:].reshape(len(x_mix), 2, -1, 2).mean(dim=2)
            mix_signs = y_mix.reshape(len(x_mix), 2, -1, 2)[:, :, 0]
            mix_hinge = torch.relu(settings.hinge_margin - mix_signs * halves).mean()
            loss = (loss + settings.quadrant_weight * hinge + settings.mix_weight * mix_hinge
                    + settings.window_weight * window_error)
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            losses.append(loss.item())
        metrics = validate(model, curves["val"], clips["val"])
        current = score(metrics)
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "score": current})
        vg, q4 = metrics["vgmidi"], metrics["4q"]
        within = metrics["vgmidi_within"]
        report(f"epoch {epoch:2d}  loss {np.mean(losses):.4f}  val r(a) {vg['arousal']['r']:.3f} "
               f"r(v) {vg['valence']['r']:.3f}  within(a) {within['arousal']:.3f}  "
               f"4q acc {q4['quadrant_accuracy']:.3f} sign(a) {q4['arousal_sign_accuracy']:.3f}  "
               f"score {current:.3f}  ({time.monotonic() - started:.1f} s)")
        if stopper.update(-current, model, metrics):
            report(f"early stop: no improvement for {settings.patience} epochs")
            break
    assert stopper.best_state is not None and stopper.best_metrics is not None
    return stopper.best_state, stopper.best_metrics, history


def train_clip_v2(
    *,
    curves: dict[str, list[Track]],
    clips: dict[str, list[Track]],
    extra_clips: list[Track] | None = None,
    out_dir: Path,
    settings: ClipV2Training | None = None,
    network: ClipV2Config | None = None,
    report: Callable[[str], None] = lambda _: None,
    backend: str = "v2",
) -> dict:
    """Train ``settings.members`` members (seeds ``seed``, ``seed + 1``, ...), each early-stopped on
    validation; write them as one ensemble to ``clip_v2.pt`` + ``clip_v2.json`` (``clip_v2_lite.*``
    for ``backend`` v2-lite, whose features are the student's); return its info."""
    settings, network = settings or ClipV2Training(), network or ClipV2Config()
    domains = [[t for t in clips["train"] if len(t.features) >= settings.clip_windows]]
    if extra_clips:
        domains.append([t for t in extra_clips if len(t.features) >= settings.clip_windows])
    runs = []
    for index in range(settings.members):
        seed = settings.seed + index
        state, metrics, history = _train_member(
            curves, clips, domains, replace(settings, seed=seed), network,
            lambda line, seed=seed: report(f"member seed {seed}: {line}"),
        )
        runs.append({"seed": seed, "state": state, "validation": metrics, "history": history})
    return save_ensemble(out_dir, runs, curves["val"], clips["val"], settings, network, report, backend)


def save_ensemble(
    out_dir: Path,
    runs: list[dict],
    val_curves: list[Track],
    val_clips: list[Track],
    settings: ClipV2Training,
    network: ClipV2Config,
    report: Callable[[str], None] = lambda _: None,
    backend: str = "v2",
) -> dict:
    """Stack trained members (``runs``: seed, state, validation, history) into one ensemble, validate
    it, and write ``clip_v2.pt`` + ``clip_v2.json`` (or ``backend``'s head files); return its info."""
    ensemble = ClipEnsembleV2(network, len(runs))
    ensemble.segment_windows = settings.curve_windows
    for member, run in zip(ensemble.members, runs, strict=True):
        member.load_state_dict(run["state"])
    metrics = validate(ensemble, val_curves, val_clips)
    report(f"ensemble of {len(runs)}: validation score {score(metrics):.3f}")
    name, front_name, suffix = HEAD_FILES[backend]
    return save_asset(out_dir, name, ensemble.state_dict(), as_numpy=suffix == "npz", info={
        "front_end": _front_end_version(front_name),
        "audio": audio_settings(),
        "config": network.to_dict(),
        "members": len(runs),
        "segment_windows": settings.curve_windows,
        "training": asdict(replace(settings, members=len(runs))),
        "validation": metrics,
        "validation_score": score(metrics),
        "member_runs": [{key: run[key] for key in ("seed", "validation", "history")} for run in runs],
    })


def _front_end_version(name: str) -> str:
    from queueemo.assets import model_version

    return model_version(name)
