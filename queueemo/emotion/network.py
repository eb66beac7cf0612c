"""The two networks (``nn.Module`` only: no I/O, no training loop).

Both follow arXiv 2403.17379, with the improvements the model card justifies:

* ``ClipModel``: per 0.5 s window, a 2-layer LSTM over the 44 log-mel frames (input normalised per mel
  band), then a second LSTM whose last state embeds the window; a bidirectional LSTM over consecutive
  window embeddings adds the seconds of context emotion depends on; a linear layer and ``tanh`` give
  (arousal, valence) in −1..1 for every window.
* ``Forecaster``: an LSTM over the last 10 (arousal, valence) points and a linear layer (the paper's
  network), read as a residual: it sees the history relative to its last point, scaled up (annotated
  curves move by ~0.01 per step, far below the LSTM's working range) by a fixed factor or by the
  history's own mean step, and predicts the scaled change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from queueemo.audio import N_FRAMES, N_MELS


@dataclass(frozen=True)
class ClipConfig:
    """Sizes of the clip model (stored beside its weights)."""

    frame_hidden: int = 20
    frame_layers: int = 2
    dropout: float = 0.1
    window_hidden: int = 20
    context_hidden: int = 32

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


class ClipModel(nn.Module):
    """Log-mel windows (batch, windows, 44, 128) → (batch, windows, 2) in −1..1."""

    def __init__(self, config: ClipConfig | None = None) -> None:
        config = config or ClipConfig()
        super().__init__()
        self.config = config
        self.segment_windows = 48  # set from the weights' JSON: the training crop length
        self.register_buffer("mel_mean", torch.zeros(N_MELS))
        self.register_buffer("mel_std", torch.ones(N_MELS))
        self.frame_lstm = nn.LSTM(
            N_MELS, config.frame_hidden, num_layers=config.frame_layers,
            dropout=config.dropout, batch_first=True,
        )
        self.window_lstm = nn.LSTM(config.frame_hidden, config.window_hidden, batch_first=True)
        self.context_lstm = nn.LSTM(
            config.window_hidden, config.context_hidden, batch_first=True, bidirectional=True
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(2 * config.context_hidden, 2)

    def embed_windows(self, windows: torch.Tensor) -> torch.Tensor:
        """(n, 44, 128) log-mel windows → (n, window_hidden) embeddings, each window on its own."""
        x = (windows - self.mel_mean) / self.mel_std
        frames, _ = self.frame_lstm(x)
        _, (last, _) = self.window_lstm(frames)
        return last[-1]

    def from_embeddings(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(batch, windows, window_hidden) → (batch, windows, 2) with context across windows."""
        context, _ = self.context_lstm(self.dropout(embeddings))
        return torch.tanh(self.head(self.dropout(context)))

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        batch, count = windows.shape[:2]
        embeddings = self.embed_windows(windows.reshape(batch * count, N_FRAMES, N_MELS))
        return self.from_embeddings(embeddings.reshape(batch, count, -1))


@dataclass(frozen=True)
class ForecasterConfig:
    """Sizes of the forecaster (stored beside its weights)."""

    hidden: int = 32
    context: int = 10
    scale: float = 20.0
    # Per-sequence scale instead of the fixed one: the history's mean absolute step (at least
    # ``floor``), so smooth human curves and jumpier clip-model trajectories look alike to the LSTM.
    normalise: bool = False
    floor: float = 0.005

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


class Forecaster(nn.Module):
    """(batch, 10, 2) history → (batch, 2) next point, clamped to −1..1."""

    def __init__(self, config: ForecasterConfig | None = None) -> None:
        config = config or ForecasterConfig()
        super().__init__()
        self.config = config
        self.lstm = nn.LSTM(2, config.hidden, batch_first=True)
        self.head = nn.Linear(config.hidden, 2)

    def unit(self, history: torch.Tensor) -> torch.Tensor:
        """(batch, 1, 2) step size the history is measured in."""
        if not self.config.normalise:
            return torch.full_like(history[:, :1], 1.0 / self.config.scale)
        steps = (history[:, 1:] - history[:, :-1]).abs().mean(dim=1, keepdim=True)
        return steps.clamp_min(self.config.floor)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        last, unit = history[:, -1], self.unit(history)
        out, _ = self.lstm((history - last[:, None]) / unit)
        return torch.clamp(last + self.head(out[:, -1]) * unit[:, 0], -1.0, 1.0)

    def rollout(self, history: torch.Tensor, steps: int) -> torch.Tensor:
        """Multi-step forecast by feeding predictions back: (batch, steps, 2)."""
        window = history[:, -self.config.context :]
        predictions = []
        for _ in range(steps):
            nxt = self.forward(window)
            predictions.append(nxt)
            window = torch.cat([window[:, 1:], nxt[:, None]], dim=1)
        return torch.stack(predictions, dim=1)


@dataclass(frozen=True)
class ClipV2Config:
    """Sizes of the v2 clip model (stored beside its weights)."""

    input_size: int = 200  # musicnn's penultimate embedding
    projection: int = 32
    context_hidden: int = 16
    dropout: float = 0.5
    linear: bool = False  # a linear read-out of each window, the LSTM path added as a residual
    # Acoustic descriptors read after the embedding (``emotion.descriptors``), appended to its projection.
    descriptors: int = 0

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


class ClipModelV2(nn.Module):
    """Per-window inputs (batch, windows, 200 [+ descriptors]) → (batch, windows, 2) in −1..1.

    Each window's embedding is normalised and projected on its own; with ``descriptors``, the window's
    normalised acoustic descriptors (the columns after the embedding) are appended to the projection
    as they are. A bidirectional LSTM across windows adds context, and the head reads both the window
    itself (a skip connection: most of the signal is in the window's own embedding) and its context
    (how the music moves around it). With ``linear``, a linear read-out of the normalised embedding
    gives each window's base value (what a ridge regression does well) and the LSTM path is added to
    it before ``tanh``, as a residual that carries the dynamics. Input columns beyond those it reads
    are ignored, so a model without descriptors runs on inputs that carry them.
    """

    def __init__(self, config: ClipV2Config | None = None) -> None:
        config = config or ClipV2Config()
        super().__init__()
        self.config = config
        self.segment_windows = 64  # set from the weights' JSON: the training crop length
        self.register_buffer("input_mean", torch.zeros(config.input_size))
        self.register_buffer("input_std", torch.ones(config.input_size))
        if config.descriptors:
            self.register_buffer("descriptor_mean", torch.zeros(config.descriptors))
            self.register_buffer("descriptor_std", torch.ones(config.descriptors))
        self.width = config.projection + config.descriptors  # what the LSTM and the head's skip read
        self.dropout = nn.Dropout(config.dropout)
        self.project = nn.Linear(config.input_size, config.projection)
        self.context_lstm = nn.LSTM(self.width, config.context_hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(self.width + 2 * config.context_hidden, 2)
        self.read_out = nn.Linear(config.input_size, 2) if config.linear else None

    def embed_windows(self, windows: torch.Tensor) -> torch.Tensor:
        """(..., 200 [+ descriptors]) inputs → (..., projection [+ descriptors] [+ 2 linear read-outs]),
        each window on its own."""
        windows = windows.float()
        size = self.config.input_size
        x = self.dropout((windows[..., :size] - self.input_mean) / self.input_std)
        parts = [torch.nn.functional.gelu(self.project(x))]
        if self.config.descriptors:
            described = windows[..., size : size + self.config.descriptors]
            parts.append((described - self.descriptor_mean) / self.descriptor_std)
        if self.read_out is not None:
            parts.append(self.read_out(x))
        return torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]

    def from_embeddings(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(batch, windows, embed_windows' width) → (batch, windows, 2) with context across windows."""
        projected = embeddings[..., : self.width]
        context, _ = self.context_lstm(self.dropout(projected))
        out = self.head(self.dropout(torch.cat([projected, context], dim=-1)))
        if self.read_out is not None:
            out = out + embeddings[..., self.width :]
        return torch.tanh(out)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return self.from_embeddings(self.embed_windows(windows))


class ClipEnsembleV2(nn.Module):
    """``members`` v2 clip models of the same sizes (trained with different seeds) run side by side;
    their (arousal, valence) are averaged per window. Same interface as ``ClipModelV2``, so analysis,
    validation and evaluation run it unchanged; ``embed_windows`` returns the members' projections
    side by side, ``from_embeddings`` splits them again."""

    def __init__(self, config: ClipV2Config | None = None, members: int = 5) -> None:
        config = config or ClipV2Config()
        super().__init__()
        self.config = config
        self.members = nn.ModuleList(ClipModelV2(config) for _ in range(members))
        self.segment_windows = 64  # set from the weights' JSON: the training crop length

    def embed_windows(self, windows: torch.Tensor) -> torch.Tensor:
        """(..., 200 [+ descriptors]) inputs → (..., members × member width), each window on its own."""
        return torch.cat([member.embed_windows(windows) for member in self.members], dim=-1)

    def from_embeddings(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(batch, windows, members × member width) → (batch, windows, 2): the members' mean."""
        parts = embeddings.chunk(len(self.members), dim=-1)
        return torch.stack([m.from_embeddings(p) for m, p in zip(self.members, parts, strict=True)]).mean(0)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return self.from_embeddings(self.embed_windows(windows))
