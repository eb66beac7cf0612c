"""A small network distilled from musicnn: the same 96-band log-mel in, a 200-d embedding per 0.5-s
window out, comparable to musicnn's 'penultimate' embedding (the ``v2-lite`` front end).

Four 1-D convolutions over time with the mel bands as channels (two of stride 2, then two dilated with
residual connections), ReLU after each; the features (at a quarter of the mel frame rate) are repeated
back to mel frames so that the 3-s patch centred on each window is pooled (max and mean) exactly as for
musicnn (``embedding._pool_patches``), then two dense layers give the embedding. Batch norm is used
in training and folded into the convolutions for inference (``folded``). ``varying_features`` /
``embed_varying`` / ``receptive_margin`` / ``stride`` are the interface ``embedding.embed_stream``
drives, so streaming, chunking and bounded memory are musicnn's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from queueemo.assets import asset_path, read_info
from queueemo.emotion.musicnn import EMBEDDING_SIZE, N_MELS
from queueemo.errors import ModelError

STUDENT_NAME = "musicnn_student"
STRIDE = 4  # mel frames per feature frame (two stride-2 convolutions)
DILATIONS = (2, 4)


@dataclass(frozen=True)
class StudentConfig:
    """Sizes of the student network."""

    channels: int = 128
    hidden: int = 256


def receptive_margin() -> int:
    """Mel frames either side a feature depends on: 2 + 2·1 (strided convs), 4·d per dilated conv,
    plus up to STRIDE − 1 frames of the repetition back to mel frames."""
    return 2 + 2 + sum(STRIDE * d for d in DILATIONS) + STRIDE - 1


class StudentNetwork(nn.Module):
    """log-mel (batch, frames, 96) → features per mel frame → pooled patches → (n, 200)."""

    stride = STRIDE
    receptive_margin = receptive_margin()

    def __init__(self, config: StudentConfig | None = None, batch_norm: bool = True) -> None:
        super().__init__()
        self.config = config or StudentConfig()
        c = self.config.channels
        self.register_buffer("input_mean", torch.zeros(N_MELS))
        self.register_buffer("input_std", torch.ones(N_MELS))
        self.register_buffer("output_mean", torch.zeros(EMBEDDING_SIZE))
        self.register_buffer("output_std", torch.ones(EMBEDDING_SIZE))
        self.convs = nn.ModuleList([
            nn.Conv1d(N_MELS, c, 5, stride=2, padding=2),
            nn.Conv1d(c, c, 3, stride=2, padding=1),
            *(nn.Conv1d(c, c, 3, padding=d, dilation=d) for d in DILATIONS),
        ])
        self.norms = nn.ModuleList(nn.BatchNorm1d(c) if batch_norm else nn.Identity() for _ in self.convs)
        self.hidden = nn.Linear(2 * c, self.config.hidden)
        self.out = nn.Linear(self.config.hidden, EMBEDDING_SIZE)

    def coarse_features(self, mel: torch.Tensor) -> torch.Tensor:
        """(batch, frames, 96) log-mel → (batch, channels, ceil(frames / 4)) features."""
        x = ((mel - self.input_mean) / self.input_std).transpose(1, 2)
        for index, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            y = F.relu(norm(conv(x)))
            x = y if index < 2 else x + y
        return x

    def varying_features(self, mel: torch.Tensor) -> torch.Tensor:
        """(batch, frames, 96) log-mel → (batch, channels, frames): each feature repeated per mel frame."""
        return self.coarse_features(mel).repeat_interleave(STRIDE, dim=2)[:, :, : mel.shape[1]]

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


def student_arrays(network: StudentNetwork, mel_basis: torch.Tensor) -> dict[str, np.ndarray]:
    """A folded student and the mel basis as the arrays of its ``.npz``."""
    arrays = {k: v.detach().numpy() for k, v in network.folded().state_dict().items()}
    arrays["mel_basis"] = mel_basis.numpy()
    return arrays


def config_dict(config: StudentConfig) -> dict[str, int]:
    """The config as stored in the student's JSON."""
    return asdict(config)


@lru_cache(maxsize=2)
def load_student(model_dir: Path | None = None):
    """The student (folded, eval mode) as an ``embedding.FrontEnd``; refuses weights made for other
    audio settings or altered."""
    from queueemo.emotion.embedding import N_FFT, FrontEnd, audio_settings, file_sha256

    info = read_info(STUDENT_NAME, model_dir)
    weights = asset_path(f"{STUDENT_NAME}.npz", model_dir)
    if info.get("audio") != audio_settings():
        raise ModelError(f"{weights} expects audio settings {info.get('audio')}; this code computes "
                         f"{audio_settings()}")
    if file_sha256(weights) != info.get("sha256"):
        raise ModelError(f"{weights} does not match the checksum in {STUDENT_NAME}.json "
                         "(damaged or replaced: reinstall queueemo or retrain it, see models/README.md)")
    network = StudentNetwork(StudentConfig(**info["config"]), batch_norm=False)
    try:
        with np.load(weights) as arrays:
            state = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in arrays.items()}
        basis = state.pop("mel_basis")
        network.load_state_dict(state)
    except (OSError, KeyError, RuntimeError, ValueError) as exc:
        raise ModelError(f"{weights} does not fit the student network: {exc}") from exc
    return FrontEnd(network.eval(), basis, torch.hann_window(N_FFT))
