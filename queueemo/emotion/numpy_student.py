"""The student distilled from musicnn (the ``v2-lite`` front end) run in numpy.

The layer geometry is defined here, torch-free, and the training network (``student``) builds its
convolutions from it, so the two cannot drift apart. Four 1-D convolutions over time with the 96 mel
bands as channels ("same" padding; the first two of stride 2; the last two dilated, with residual
connections; ReLU after each, batch norm folded into the weights) give one feature vector per 4 mel
frames; the 3-s patch of each window is pooled (max and mean, as if the features were repeated back to
mel frames) and two dense layers give a 200-d embedding on musicnn's scale. Weights come from the
shipped ``.npz`` (checked against the JSON's audio settings and SHA-256).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from queueemo.emotion.musicnn_input import checked_front_end
from queueemo.emotion.numpy_ops import conv1d
from queueemo.errors import ModelError

STUDENT_NAME = "musicnn_student"
# (kernel, stride, dilation) per convolution; the layers from RESIDUAL_FROM on add their input back.
CONVOLUTIONS = ((5, 2, 1), (3, 2, 1), (3, 1, 2), (3, 1, 4))
RESIDUAL_FROM = 2
STRIDE = int(np.prod([stride for _, stride, _ in CONVOLUTIONS]))


def padding(kernel: int, dilation: int) -> int:
    """'Same' padding of a convolution."""
    return dilation * (kernel - 1) // 2


def receptive_margin() -> int:
    """Mel frames either side that a frame's features depend on, plus the STRIDE − 1 frames a coarse
    feature stands for."""
    margin, step = 0, 1
    for kernel, stride, dilation in CONVOLUTIONS:
        margin += padding(kernel, dilation) * step
        step *= stride
    return margin + STRIDE - 1


RECEPTIVE_MARGIN = receptive_margin()

@dataclass(frozen=True)
class NumpyStudent:
    """The folded student's arrays; a ``patch_stream.PatchNetwork``."""

    arrays: dict[str, np.ndarray]
    receptive_margin: int = RECEPTIVE_MARGIN
    stride: int = STRIDE
    embedding_size: int = 200

    def varying_features(self, log_mel: np.ndarray) -> np.ndarray:
        """(frames, 96) log-mel → (channels, ceil(frames / STRIDE)) features, one per STRIDE frames."""
        a = self.arrays
        x = (log_mel - a["input_mean"]) / a["input_std"]
        for index, (kernel, stride, dilation) in enumerate(CONVOLUTIONS):
            pad = padding(kernel, dilation)
            padded = np.pad(x, ((pad, pad), (0, 0)))
            y = np.maximum(conv1d(padded, a[f"convs.{index}.weight"], a[f"convs.{index}.bias"],
                                  stride=stride, dilation=dilation), 0)
            x = x + y if index >= RESIDUAL_FROM else y
        return x.T

    def embed_varying(self, maximum: np.ndarray, mean: np.ndarray) -> np.ndarray:
        """Pooled (n, channels) max and mean → (n, 200) embedding on musicnn's scale."""
        a = self.arrays
        pooled = np.concatenate([maximum, mean], axis=1)
        hidden = np.maximum(pooled @ a["hidden.weight"].T + a["hidden.bias"], 0)
        standardised = hidden @ a["out.weight"].T + a["out.bias"]
        return (standardised * a["output_std"] + a["output_mean"]).astype(np.float32)


@lru_cache(maxsize=2)
def load_numpy_student(model_dir: Path | None = None) -> tuple[NumpyStudent, np.ndarray]:
    """The shipped student and its (96, 257) mel basis; ``ModelError`` for weights made for other audio
    settings, altered, or not fitting the network."""
    remedy = "reinstall queueemo or retrain it, see models/README.md"
    weights = checked_front_end(STUDENT_NAME, model_dir, remedy)
    try:
        with np.load(weights) as stored:
            arrays = {name: np.asarray(value, dtype=np.float32) for name, value in stored.items()}
        basis = arrays.pop("mel_basis")
        expected = {"input_mean", "input_std", "output_mean", "output_std", "hidden.weight", "hidden.bias",
                    "out.weight", "out.bias"} | {f"convs.{i}.{p}" for i in range(len(CONVOLUTIONS))
                                                 for p in ("weight", "bias")}
        if set(arrays) != expected:
            raise ValueError(f"arrays {sorted(set(arrays) ^ expected)} missing or unexpected")
    except (OSError, KeyError, ValueError) as exc:
        raise ModelError(f"{weights} does not fit the student network: {exc}") from exc
    return NumpyStudent(arrays), basis
