"""Paired comparison of v2 clip models on the validation split, with the noise of the difference.

``python scripts/compare_clip_v2.py --data ../shared/data DIR_A [v2-lite=]DIR_B [...]`` prints each
model's validation score (``train_clip_v2.score``) and its terms, the figures outside the score (valence
sign, Q3 recall, VGMIDI valence r), and for each model against the first
the score difference with its standard deviation under a paired bootstrap: validation 4q clips and
vgmidi pieces are resampled with replacement, both models scored on the same resample. A difference
smaller than about two of those SDs is not a validated difference. A ``v2-lite=`` model is scored on
the embeddings of the student stored next to its head (same clips and pieces).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from queueemo.emotion.training.datasets import Track
from queueemo.emotion.training.metrics import validation_report

RESAMPLES = 500


def _predictions(model_dir: Path, curves: list[Track], clips: list[Track], backend: str = "v2"):
    from queueemo.emotion.inference import predict_features
    from queueemo.emotion.inference_v2 import load_clip_v2

    model, version = load_clip_v2(model_dir, backend)
    pieces = [predict_features(model, t.features) for t in curves]
    means = np.stack([predict_features(model, t.features).mean(0) for t in clips])
    return version, pieces, means


def score_terms(pieces: list[np.ndarray], targets: list[np.ndarray], means: np.ndarray,
                quadrants: list[str], piece_index: np.ndarray, clip_index: np.ndarray) -> dict[str, float]:
    """The validation score's terms (``train_clip_v2.score``) on a (re)sample of pieces and clips."""
    report = validation_report([pieces[i] for i in piece_index], [targets[i] for i in piece_index],
                               means[clip_index], [quadrants[i] for i in clip_index])
    q4 = report["4q"]
    return {"quadrant": q4["quadrant_accuracy"], "sign_a": q4["arousal_sign_accuracy"],
            "r_a": report["vgmidi"]["arousal"]["r"], "within_a": report["vgmidi_within"]["arousal"]}


def other_figures(pieces: list[np.ndarray], targets: list[np.ndarray], means: np.ndarray,
                  quadrants: list[str]) -> dict[str, float]:
    """Validation figures the model card reports beside the score: valence sign, Q3 recall, VGMIDI r v."""
    report = validation_report(pieces, targets, means, quadrants)
    return {"sign_v": report["4q"]["valence_sign_accuracy"], "recall_Q3": report["4q"].get("recall_Q3", 0.0),
            "r_v": report["vgmidi"]["valence"]["r"]}


def compare(model_dirs: list[Path], curves: list[Track], clips: list[Track], seed: int = 0,
            backends: list[str] | None = None,
            features: list[tuple[list[Track], list[Track]] | None] | None = None) -> list[str]:
    """Report lines: each model's score and terms; each against the first with the bootstrap SD.

    ``backends`` names each model's backend (default v2); ``features`` gives each model's (curves,
    clips), the same files in the same order, where they are not ``curves`` and ``clips`` (None).
    """
    targets = [t.targets for t in curves]
    quadrants = [t.quadrant for t in clips]
    backends = backends or ["v2"] * len(model_dirs)
    inputs = [own or (curves, clips) for own in features or [None] * len(model_dirs)]
    runs = [_predictions(d, *own, b) for d, own, b in zip(model_dirs, inputs, backends, strict=True)]
    full = (np.arange(len(curves)), np.arange(len(clips)))
    rng = np.random.default_rng(seed)
    samples = [(rng.integers(0, len(curves), len(curves)), rng.integers(0, len(clips), len(clips)))
               for _ in range(RESAMPLES)]
    lines, boot = [], []
    for version, pieces, means in runs:
        terms = score_terms(pieces, targets, means, quadrants, *full)
        others = other_figures(pieces, targets, means, quadrants)
        lines.append(f"{version}: score {sum(terms.values()):.3f}  "
                     + "  ".join(f"{k} {v:.3f}" for k, v in terms.items())
                     + "  | not scored: " + "  ".join(f"{k} {v:.3f}" for k, v in others.items()))
        boot.append(np.array([sum(score_terms(pieces, targets, means, quadrants, *sample).values())
                              for sample in samples]))
    for (version, *_), scores in zip(runs[1:], boot[1:], strict=True):
        difference = scores - boot[0]
        lines.append(f"{version} − {runs[0][0]}: bootstrap mean {difference.mean():+.3f}, "
                     f"SD {difference.std():.3f} ({RESAMPLES} paired resamples of "
                     f"{len(clips)} clips and {len(curves)} pieces)")
    return lines
