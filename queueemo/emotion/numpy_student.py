"""The student distilled from musicnn (the ``v2-lite`` front end) run in numpy.

The layer geometry (``StudentConfig``) is defined here, torch-free, stored in the student's JSON and
read by both this runtime and the training network (``student``), so the two cannot drift apart. 1-D
convolutions over time with the 96 mel bands as channels ("same" padding; the shipped student: four,
the first two of stride 2, the last two dilated with residual connections; ReLU after each, batch norm
folded into the weights) give one feature vector per 4 mel frames; the 3-s patch of each window is
pooled (max and mean, as if the features were repeated back to mel frames) and two dense layers give a
200-d embedding on musicnn's scale. Residual layers from ``gated_from`` on scale their ReLU output by a
per-channel gain (``gains.<layer>``; zero when a layer is added to a trained student, so the deeper
network starts out computing exactly what the trained one does). Weights come from the shipped
``.npz`` (checked against the JSON's audio settings and SHA-256).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from queueemo.assets import read_info
from queueemo.emotion.musicnn_input import checked_front_end
from queueemo.emotion.numpy_ops import conv1d
from queueemo.errors import ModelError

STUDENT_NAME = "musicnn_student"
# The shipped student's (kernel, stride, dilation) per convolution; layers from 2 on add their input back.
SHIPPED_CONVOLUTIONS = ((5, 2, 1), (3, 2, 1), (3, 1, 2), (3, 1, 4))


def padding(kernel: int, dilation: int) -> int:
    """'Same' padding of a convolution."""
    return dilation * (kernel - 1) // 2


@dataclass(frozen=True)
class StudentConfig:
    """Sizes and layer geometry of the student (its JSON's ``config``; missing keys: the shipped ones)."""

    channels: int = 128
    hidden: int = 256
    convolutions: tuple[tuple[int, int, int], ...] = SHIPPED_CONVOLUTIONS
    residual_from: int = 2  # layers from here on add their input back (stride 1, channels → channels)
    gated_from: int | None = None  # residual layers from here on scale their output by a gain

    @classmethod
    def from_dict(cls, stored: dict) -> StudentConfig:
        """The config as stored in a JSON (lists for tuples)."""
        stored = dict(stored)
        if "convolutions" in stored:
            stored["convolutions"] = tuple(tuple(int(v) for v in layer) for layer in stored["convolutions"])
        return cls(**stored)

    def __post_init__(self) -> None:
        gated = len(self.convolutions) if self.gated_from is None else self.gated_from
        if not 0 < self.residual_from <= gated <= len(self.convolutions) or any(
                stride != 1 for _, stride, _ in self.convolutions[self.residual_from:]):
            raise ValueError(f"not a student geometry: {self}")

    @property
    def stride(self) -> int:
        """Mel frames per feature vector."""
        return int(np.prod([stride for _, stride, _ in self.convolutions]))

    @property
    def receptive_margin(self) -> int:
        """Mel frames either side that a frame's features depend on, plus the stride − 1 frames a coarse
        feature stands for."""
        margin, step = 0, 1
        for kernel, stride, dilation in self.convolutions:
            margin += padding(kernel, dilation) * step
            step *= stride
        return margin + self.stride - 1

    def gated(self, index: int) -> bool:
        """Whether layer ``index`` scales its output by a per-channel gain."""
        return self.gated_from is not None and index >= self.gated_from

    def deepened(self, dilations: tuple[int, ...]) -> StudentConfig:
        """This geometry with gated residual k3 layers of these dilations added on top."""
        return replace(self, convolutions=self.convolutions + tuple((3, 1, d) for d in dilations),
                       gated_from=len(self.convolutions) if self.gated_from is None else self.gated_from)

    def array_names(self) -> set[str]:
        """Names of the folded network's arrays."""
        names = {"input_mean", "input_std", "output_mean", "output_std", "hidden.weight", "hidden.bias",
                 "out.weight", "out.bias"}
        for index in range(len(self.convolutions)):
            names |= {f"convs.{index}.weight", f"convs.{index}.bias"}
            if self.gated(index):
                names.add(f"gains.{index}")
        return names


class StudentGeometry:
    """``stride`` and ``receptive_margin`` (what ``patch_stream`` reads) from a student's ``config``."""

    config: StudentConfig

    @property
    def stride(self) -> int:
        """Mel frames per feature vector."""
        return self.config.stride

    @property
    def receptive_margin(self) -> int:
        """Mel frames either side a feature depends on (see ``StudentConfig.receptive_margin``)."""
        return self.config.receptive_margin


@dataclass(frozen=True)
class NumpyStudent(StudentGeometry):
    """The folded student's arrays; a ``patch_stream.PatchNetwork``."""

    arrays: dict[str, np.ndarray]
    config: StudentConfig = field(default_factory=StudentConfig)
    embedding_size: int = 200

    def varying_features(self, log_mel: np.ndarray) -> np.ndarray:
        """(frames, 96) log-mel → (channels, ceil(frames / stride)) features, one per stride frames."""
        a, config = self.arrays, self.config
        x = (log_mel - a["input_mean"]) / a["input_std"]
        for index, (kernel, stride, dilation) in enumerate(config.convolutions):
            pad = padding(kernel, dilation)
            padded = np.pad(x, ((pad, pad), (0, 0)))
            y = np.maximum(conv1d(padded, a[f"convs.{index}.weight"], a[f"convs.{index}.bias"],
                                  stride=stride, dilation=dilation), 0)
            if config.gated(index):
                y = y * a[f"gains.{index}"]
            x = x + y if index >= config.residual_from else y
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
        config = StudentConfig.from_dict(read_info(STUDENT_NAME, model_dir).get("config", {}))
        with np.load(weights) as stored:
            arrays = {name: np.asarray(value, dtype=np.float32) for name, value in stored.items()}
        basis = arrays.pop("mel_basis")
        expected = config.array_names()
        if set(arrays) != expected:
            raise ValueError(f"arrays {sorted(set(arrays) ^ expected)} missing or unexpected")
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{weights} does not fit the student network: {exc}") from exc
    return NumpyStudent(arrays, config), basis
