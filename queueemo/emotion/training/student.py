"""The student distilled from musicnn, as a torch module for training (the ``v2-lite`` front end).

The same 96-band log-mel in, a 200-d embedding per 0.5-s window out, comparable to musicnn's
'penultimate' embedding. The layer geometry is ``numpy_student.StudentConfig`` (stored in the JSON),
shared with the numpy runtime that runs the shipped weights at analysis time: 1-D convolutions over
time with the mel bands as channels give one feature vector per 4 mel frames, the 3-s patch centred on
each window is pooled (max and mean, as if the features were repeated back to mel frames), then two
dense layers give the embedding. Batch norm is used in training and folded into the convolutions for
the shipped weights (``folded``).
"""

from __future__ import annotations

from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from queueemo.emotion.musicnn import EMBEDDING_SIZE
from queueemo.emotion.musicnn_input import N_MELS
from queueemo.emotion.numpy_student import (
    STUDENT_NAME,
    NumpyStudent,
    StudentConfig,
    StudentGeometry,
    load_numpy_student,
    padding,
)
from queueemo.errors import ModelError

if TYPE_CHECKING:
    from queueemo.emotion.embedding import FrontEnd


class StudentNetwork(StudentGeometry, nn.Module):
    """log-mel (batch, frames, 96) → features per mel frame → pooled patches → (n, 200)."""

    def __init__(self, config: StudentConfig | None = None, batch_norm: bool = True) -> None:
        super().__init__()
        self.config = config or StudentConfig()
        c = self.config.channels
        self.register_buffer("input_mean", torch.zeros(N_MELS))
        self.register_buffer("input_std", torch.ones(N_MELS))
        self.register_buffer("output_mean", torch.zeros(EMBEDDING_SIZE))
        self.register_buffer("output_std", torch.ones(EMBEDDING_SIZE))
        self.convs = nn.ModuleList(
            nn.Conv1d(N_MELS if index == 0 else c, c, kernel, stride=stride, dilation=dilation,
                      padding=padding(kernel, dilation))
            for index, (kernel, stride, dilation) in enumerate(self.config.convolutions))
        self.gains = nn.ParameterDict({str(index): nn.Parameter(torch.zeros(c))
                                       for index in range(len(self.convs)) if self.config.gated(index)})
        self.norms = nn.ModuleList(nn.BatchNorm1d(c) if batch_norm else nn.Identity() for _ in self.convs)
        self.hidden = nn.Linear(2 * c, self.config.hidden)
        self.out = nn.Linear(self.config.hidden, EMBEDDING_SIZE)

    def varying_features(self, mel: torch.Tensor) -> torch.Tensor:
        """(batch, frames, 96) log-mel → (batch, channels, ceil(frames / stride)): one feature per
        stride frames, pooled as if repeated back to mel frames (``musicnn_input.pool_patches``)."""
        x = ((mel - self.input_mean) / self.input_std).transpose(1, 2)
        for index, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            y = F.relu(norm(conv(x)))
            if self.config.gated(index):
                y = y * self.gains[str(index)][:, None]
            x = y if index < self.config.residual_from else x + y
        return x

    def embed_standardised(self, maximum: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        """Pooled max and mean (n, channels) each → (n, 200) embedding standardised per dimension."""
        return self.out(F.relu(self.hidden(torch.cat([maximum, mean], dim=1))))

    def embed_varying(self, maximum: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        """Pooled max and mean (n, channels) each → (n, 200) embedding on musicnn's scale."""
        return self.embed_standardised(maximum, mean) * self.output_std + self.output_mean

    def folded(self) -> StudentNetwork:
        """The same network in eval mode with each batch norm folded into its convolution."""
        plain = StudentNetwork(self.config, batch_norm=False)
        state = {k: v for k, v in self.state_dict().items() if not k.startswith("norms.")}
        for index, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            if isinstance(norm, nn.BatchNorm1d):
                scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
                state[f"convs.{index}.weight"] = conv.weight * scale[:, None, None]
                state[f"convs.{index}.bias"] = (conv.bias - norm.running_mean) * scale + norm.bias
        plain.load_state_dict({k: v.detach().clone() for k, v in state.items()})
        return plain.eval()


def deepened(network: StudentNetwork, dilations: tuple[int, ...], seed: int = 0) -> StudentNetwork:
    """A folded (batch-norm-free) student with gated residual k3 layers of these dilations added on
    top: new convolutions initialised at random, their gains at zero, so it computes exactly what
    ``network`` computes until training moves the gains."""
    torch.manual_seed(seed)
    deeper = StudentNetwork(network.config.deepened(dilations), batch_norm=False)
    missing, unexpected = deeper.load_state_dict(network.state_dict(), strict=False)
    if unexpected or any(not name.startswith(("convs.", "gains.")) for name in missing):
        raise ValueError(f"{missing} / {unexpected}: not a folded student of the same sizes")
    return deeper


def student_arrays(network: StudentNetwork, mel_basis: torch.Tensor) -> dict[str, np.ndarray]:
    """A folded student and the mel basis as the arrays of its ``.npz``."""
    arrays = {k: v.detach().numpy() for k, v in network.folded().state_dict().items()}
    arrays["mel_basis"] = mel_basis.numpy()
    return arrays


def config_dict(config: StudentConfig) -> dict:
    """The config as stored in the student's JSON."""
    return asdict(config)


@lru_cache(maxsize=2)
def load_student(model_dir: Path | None = None) -> FrontEnd:
    """The shipped student (folded, eval mode) as a torch ``embedding.FrontEnd`` (training and
    evaluation; analysis runs it in numpy), with the same checks as ``load_numpy_student``."""
    from queueemo.emotion.embedding import N_FFT, FrontEnd

    student, basis = load_numpy_student(model_dir)
    return FrontEnd(network_of(student).eval(), torch.from_numpy(basis), torch.hann_window(N_FFT))


def network_of(student: NumpyStudent) -> StudentNetwork:
    """The folded numpy student as a torch network without batch norm (trainable, same weights)."""
    network = StudentNetwork(student.config, batch_norm=False)
    try:
        network.load_state_dict({name: torch.from_numpy(value) for name, value in student.arrays.items()})
    except RuntimeError as exc:
        raise ModelError(f"{STUDENT_NAME}.npz does not fit the student network: {exc}") from exc
    return network
