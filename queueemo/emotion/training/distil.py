"""Distil musicnn into the student network (``emotion.training.student``): per-window regression on the
teacher's cached 200-d embeddings from the cached student input (mel power, ``datasets.MEL_FOLDER``).

Only training-split files are trained on (4q by artist, vgmidi by piece, emopia by song, as
``datasets.split_of``), plus optionally unlabelled extra music (the teacher labels any audio: a share
``extra_share`` of the crops comes from it); validation files measure the fit (per-window cosine and
R² to the teacher). A run may start from a trained student (``initial``, warm start).
Each step takes random crops of whole-file mels; a window's 3-s patch is pooled where it lies in
the whole file, so a crop's windows are those whose patch lies inside it. Augmentation: random gain and
a random low-pass on the mel power (the teacher target stays the clean one).

With a frozen emotion head (``head``, e.g. v2's ``ClipEnsembleV2`` in eval mode) and
``head_weight`` > 0, the loss also matches what the head makes of the embedding: the head runs over
each crop's windows as a sequence, once on the teacher's embeddings and once on the student's, and the
MSE of its (arousal, valence) is added (``projection_weight``: also the MSE of the members' per-window
projections); the head's parameters never change, the gradient flows into the student only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from queueemo.emotion.embedding import FrontEnd, log_compress, stream_mel
from queueemo.emotion.musicnn import EMBEDDING_SIZE
from queueemo.emotion.musicnn_input import (
    FRAMES_PER_WINDOW,
    N_FFT,
    N_MELS,
    PATCH_FRAMES,
    SAMPLE_RATE,
    patch_starts,
)
from queueemo.emotion.network import ClipEnsembleV2
from queueemo.emotion.training.student import StudentConfig, StudentNetwork


def excerpt_mel(audio_path: Path, excerpt: tuple[int, int | None] = (0, None)) -> np.ndarray:
    """(frames, 96) float16 mel power of a file (or of windows ``excerpt`` of it), as analysis computes."""
    from queueemo.assets import asset_path
    from queueemo.audio import decode_windows
    from queueemo.emotion.embedding import _window_range

    with np.load(asset_path("musicnn_msd.npz")) as arrays:
        basis = torch.from_numpy(np.asarray(arrays["mel_basis"], dtype=np.float32))
    front = FrontEnd(torch.nn.Identity(), basis, torch.hann_window(N_FFT))
    blocks = decode_windows(audio_path, sample_rate=SAMPLE_RATE)
    first, count = excerpt
    if first or count is not None:
        blocks = _window_range(blocks, first, count)
    with torch.inference_mode():
        power, _ = stream_mel(front, blocks)
    return power.numpy()


@dataclass
class Pair:
    """One file: its mel power and the teacher's embedding per window."""

    key: str
    mel: np.ndarray  # (frames, 96) float16 power
    teacher: np.ndarray  # (windows, 200) float16


def load_pairs(mel_dir: Path, teacher_dir: Path, names: list[str]) -> list[Pair]:
    """The cached (mel, teacher) pairs of ``names`` (cache file names) that both caches hold."""
    pairs = []
    for name in names:
        mel_path, teacher_path = mel_dir / name, teacher_dir / name
        if not (mel_path.exists() and teacher_path.exists()):
            continue
        mel, teacher = np.load(mel_path), np.load(teacher_path)[:, :EMBEDDING_SIZE]
        if abs(len(mel) / FRAMES_PER_WINDOW - len(teacher)) > 1.5:
            raise ValueError(f"{name}: {len(mel)} mel frames do not fit {len(teacher)} teacher windows")
        pairs.append(Pair(name, mel, teacher))
    return pairs


@dataclass(frozen=True)
class DistilTraining:
    """Hyper-parameters of a distillation run."""

    seed: int = 1234
    crop_seconds: float = 24.0
    batch: int = 16
    steps: int = 3000
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    cosine_weight: float = 0.5
    lowpass_probability: float = 0.3  # keep mel bands below a random cut-off (≥ 4 kHz) only
    gain_db: float = 6.0  # ± uniform
    extra_share: float = 0.0  # share of crops drawn from the extra (unlabelled) files, if any
    embedding_weight: float = 1.0  # on the embedding terms (MSE + cosine_weight × (1 − cosine))
    head_weight: float = 0.0  # on the MSE of the frozen head's (arousal, valence), student vs teacher
    projection_weight: float = 0.0  # on the MSE of the head members' 32-d projections (GELU(Wx))


def _statistics(pairs: list[Pair]) -> tuple[torch.Tensor, ...]:
    """Per-band mean/std of the log-mel and per-dimension mean/std of the teacher, from ``pairs``."""
    mel_sum, mel_sq, frames = np.zeros(N_MELS), np.zeros(N_MELS), 0
    for pair in pairs[:: max(1, len(pairs) // 300)]:
        logged = log_compress(torch.from_numpy(pair.mel)).double().numpy()
        mel_sum += logged.sum(0)
        mel_sq += (logged ** 2).sum(0)
        frames += len(logged)
    mel_mean = mel_sum / frames
    mel_std = np.sqrt(np.maximum(mel_sq / frames - mel_mean ** 2, 1e-6))
    teacher = np.concatenate([p.teacher.astype(np.float64) for p in pairs])
    return tuple(torch.tensor(a, dtype=torch.float32)
                 for a in (mel_mean, mel_std, teacher.mean(0), teacher.std(0) + 1e-3))


def _augment(power: torch.Tensor, settings: DistilTraining, rng: np.random.Generator) -> torch.Tensor:
    """Random gain and (sometimes) a low-pass on (batch, frames, 96) mel power."""
    gains = 10 ** (rng.uniform(-settings.gain_db, settings.gain_db, len(power)) / 10)
    power = power * torch.tensor(gains, dtype=torch.float32)[:, None, None]
    for row in np.nonzero(rng.random(len(power)) < settings.lowpass_probability)[0]:
        cut = int(rng.integers(60, N_MELS))  # mel band 60 ≈ 4 kHz
        roll = torch.ones(N_MELS)
        roll[cut:] = 10 ** (-0.6 * torch.arange(1, N_MELS - cut + 1))  # 6 dB per band above the cut
        power[row] = power[row] * roll
    return power


def _batch(pairs: list[Pair], settings: DistilTraining, rng: np.random.Generator, augment: bool,
           extra: list[Pair] | None = None):
    """Crops of mel power (batch, frames, 96), and for each crop the windows whose patch lies inside
    it: their patch starts within the crop and teacher embeddings, flattened over the batch. With
    ``extra`` files, each crop comes from them with probability ``settings.extra_share``."""
    length = int(settings.crop_seconds * SAMPLE_RATE / 256)
    mels, starts, rows, targets = [], [], [], []
    while len(mels) < settings.batch:
        source = extra if extra and rng.random() < settings.extra_share else pairs
        pair = source[int(rng.integers(len(source)))]
        if len(pair.mel) < PATCH_FRAMES:
            continue
        n = min(length, len(pair.mel))
        first = int(rng.integers(0, len(pair.mel) - n + 1)) // 4 * 4
        crop = np.zeros((length, N_MELS), dtype=np.float32)
        crop[:n] = pair.mel[first : first + n]
        all_starts = patch_starts(len(pair.teacher), len(pair.mel))
        inside = np.nonzero((all_starts >= first) & (all_starts + PATCH_FRAMES <= first + n))[0]
        if len(inside) == 0:
            continue
        starts.append(all_starts[inside] - first)
        rows.append(np.full(len(inside), len(mels)))
        targets.append(pair.teacher[inside].astype(np.float32))
        mels.append(crop)
    power = torch.from_numpy(np.stack(mels))
    if augment:
        power = _augment(power, settings, rng)
    return (power, torch.from_numpy(np.concatenate(rows)), torch.from_numpy(np.concatenate(starts)),
            torch.from_numpy(np.concatenate(targets)))


def student_outputs(network: StudentNetwork, power: torch.Tensor, rows: torch.Tensor,
                    starts: torch.Tensor) -> torch.Tensor:
    """Standardised embeddings of the patches at ``starts`` of crops ``rows`` of ``power``.

    Equal to pooling ``varying_features`` over mel frames as analysis does, computed on the coarse
    features: a patch covers 47 or 48 of them (by its start's phase), so its maximum is one of two
    sliding maxima; its mean comes from cumulative sums of the features repeated per mel frame.
    """
    coarse = network.varying_features(log_compress(power))  # (batch, channels, frames / 4)
    stride = network.stride
    first, last = starts // stride, (starts + PATCH_FRAMES - 1) // stride
    shortest = (PATCH_FRAMES - 1) // stride + 1  # covered coarse frames: ``shortest`` or one more
    maxima = [F.max_pool1d(coarse, k, 1) for k in (shortest, shortest + 1)]
    longer = last - first + 1 > shortest
    top = maxima[1].shape[2] - 1
    maximum = torch.where(longer[:, None], maxima[1][rows, :, first.clamp(max=top)],
                          maxima[0][rows, :, first])
    fine = coarse.repeat_interleave(stride, dim=2)[:, :, : power.shape[1]]
    sums = F.pad(torch.cumsum(fine.double(), dim=2), (1, 0))
    mean = ((sums[rows, :, starts + PATCH_FRAMES] - sums[rows, :, starts]) / PATCH_FRAMES).float()
    return network.embed_standardised(maximum, mean)


def head_terms(head: ClipEnsembleV2, predicted: torch.Tensor, targets: torch.Tensor,
               rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """MSE of the head's (arousal, valence) and of its members' projections, run over each crop's
    windows (``rows``: the crop of each window, ascending) as a sequence on the student's embeddings
    ``predicted`` and the teacher's ``targets`` (both on musicnn's scale); the teacher side without grad.
    Crops of equal window counts run as one batch (no padding enters the bidirectional LSTM)."""
    counts = torch.bincount(rows)
    pieces = [(s, t) for s, t in zip(predicted.split(counts.tolist()), targets.split(counts.tolist()),
                                     strict=True) if len(s)]
    outputs = projections = predicted.new_zeros(())
    for length in sorted({len(s) for s, _ in pieces}):
        student = torch.stack([s for s, _ in pieces if len(s) == length])
        with torch.no_grad():
            wanted = head.embed_windows(torch.stack([t for s, t in pieces if len(s) == length]))
            wanted_out = head.from_embeddings(wanted)
        projected = head.embed_windows(student)
        share = student.shape[0] * length / len(predicted)
        outputs = outputs + share * F.mse_loss(head.from_embeddings(projected), wanted_out)
        projections = projections + share * F.mse_loss(projected, wanted)
    return outputs, projections


def _head_fit(head: ClipEnsembleV2, predicted: list[np.ndarray],
              teacher: list[np.ndarray]) -> dict[str, float]:
    """Per window, over files run whole through the head: MSE of (arousal, valence) student vs teacher."""
    from queueemo.emotion.inference import predict_features

    errors = [((predict_features(head, p) - predict_features(head, t)) ** 2).mean(1)
              for p, t in zip(predicted, teacher, strict=True)]
    return {"head_mse": float(np.concatenate(errors).mean())}


def fit_report(network: StudentNetwork, pairs: list[Pair],
               head: ClipEnsembleV2 | None = None) -> dict[str, float]:
    """Per-window fit of the (eval-mode) student to the teacher on whole files, as analysis runs it:
    mean cosine, and R² over all dimensions (1 − SSE / SST per dimension, then averaged); with
    ``head``, also the MSE of its (arousal, valence) on the student's vs the teacher's embeddings."""
    from queueemo.emotion.embedding import embed_mel

    network = network.folded() if any(isinstance(n, torch.nn.BatchNorm1d) for n in network.norms) else network
    predicted, teacher = [], []
    with torch.inference_mode():
        for pair in pairs:
            predicted.append(embed_mel(network, torch.from_numpy(pair.mel), len(pair.teacher)).numpy())
            teacher.append(pair.teacher.astype(np.float32))
    p, t = np.concatenate(predicted), np.concatenate(teacher)
    cosine = np.sum(p * t, 1) / (np.linalg.norm(p, axis=1) * np.linalg.norm(t, axis=1) + 1e-9)
    r2 = 1 - ((p - t) ** 2).sum(0) / ((t - t.mean(0)) ** 2).sum(0)
    fit = {"windows": len(t), "cosine": float(cosine.mean()), "r2": float(r2.mean()),
           "r2_median_dimension": float(np.median(r2))}
    return {**fit, **_head_fit(head, predicted, teacher)} if head is not None else fit


def distil(train: list[Pair], val: list[Pair], settings: DistilTraining | None = None,
           config: StudentConfig | None = None,
           report: Callable[[str], None] = lambda _: None, *, extra: list[Pair] | None = None,
           initial: StudentNetwork | None = None,
           checkpoint: Callable[[StudentNetwork, dict], None] | None = None,
           head: ClipEnsembleV2 | None = None) -> tuple[StudentNetwork, dict]:
    """Train a student on ``train`` (and ``extra``), from scratch or from ``initial`` (whose input and
    output statistics are kept); return it (eval mode, batch norm not yet folded) and its info:
    settings, the fit on ``val`` and the learning curve. ``checkpoint`` gets the network and the
    curve so far whenever the quick validation look (60 files, every 250 steps) is the best yet: by
    R², or with a ``head`` (frozen, in eval mode; used in the loss if ``settings.head_weight``) by
    the lowest head MSE."""
    settings = settings or DistilTraining()
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    network = initial if initial is not None else StudentNetwork(config)
    if initial is None:
        for buffer, value in zip((network.input_mean, network.input_std, network.output_mean,
                                  network.output_std), _statistics(train + (extra or [])), strict=True):
            buffer.copy_(value)
    out_mean, out_std = network.output_mean, network.output_std
    optimiser = torch.optim.AdamW(network.parameters(), lr=settings.learning_rate,
                                  weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, settings.learning_rate, settings.steps,
                                                   pct_start=max(0.05, 4 / settings.steps))
    if head is not None:
        head.eval().requires_grad_(False)
    history, losses, started, best = [], [], time.monotonic(), -np.inf
    for step in range(1, settings.steps + 1):
        network.train()
        power, rows, starts, targets = _batch(train, settings, rng, augment=True, extra=extra)
        wanted = (targets - out_mean) / out_std
        predicted = student_outputs(network, power, rows, starts)
        embedded = predicted * out_std + out_mean
        cosine = F.cosine_similarity(embedded, targets, dim=1).mean()
        embedding_loss = F.mse_loss(predicted, wanted) + settings.cosine_weight * (1 - cosine)
        loss = settings.embedding_weight * embedding_loss
        if head is not None and (settings.head_weight or settings.projection_weight):
            outputs, projections = head_terms(head, embedded, targets, rows)
            loss = loss + settings.head_weight * outputs + settings.projection_weight * projections
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
        if step % 250 == 0 or step == settings.steps:
            network.eval()
            fit = fit_report(network, val[:: max(1, len(val) // 60)], head)  # a quick look at 60 files
            history.append({"step": step, "loss": float(np.mean(losses)), **fit})
            shown = f"  head MSE {fit['head_mse']:.5f}" if head is not None else ""
            report(f"step {step}  loss {np.mean(losses):.4f}  val cosine {fit['cosine']:.4f} "
                   f"R² {fit['r2']:.4f}{shown}  ({time.monotonic() - started:.0f} s)")
            losses = []
            score = -fit["head_mse"] if head is not None else fit["r2"]
            if checkpoint is not None and score > best:
                best = score
                checkpoint(network, {"step": step, "history": history})
    network.eval()
    fit = fit_report(network, val, head)
    report(f"validation fit on {len(val)} files: {fit}")
    info = {"training": asdict(settings), "train_files": len(train), "val_files": len(val),
            "extra_files": len(extra or []), "validation_fit": fit, "history": history}
    return network, info
