"""The v2 clip head (an ensemble of projection + bidirectional LSTM + read-out) run in numpy.

The same computation as ``network.ClipEnsembleV2`` in eval mode, from the same state dict as arrays,
for the torch-free runtime: per window, normalise the 200-d embedding and project it (GELU); across
windows, a bidirectional LSTM; per window, a linear head on [projection, context] and ``tanh``; the
members' mean. Long tracks go through half-overlapping segments (``segments``), as with torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from queueemo.assets import asset_path, read_info
from queueemo.emotion.musicnn_input import FRONT_END_NAME, audio_settings
from queueemo.emotion.numpy_ops import bidirectional_lstms, gelu
from queueemo.emotion.numpy_student import STUDENT_NAME
from queueemo.emotion.segments import blend_segments, segment_starts
from queueemo.errors import ModelError

# Per backend: the head's asset name, the front end it reads and its weights' format (the v2-lite head
# runs in numpy, so it is stored as arrays).
HEAD_FILES = {"v2": ("clip_v2", FRONT_END_NAME, "pt"), "v2-lite": ("clip_v2_lite", STUDENT_NAME, "npz")}


def head_info(backend: str, model_dir: Path | None = None) -> tuple[dict, Path]:
    """The JSON and weights path of ``backend``'s head; ``ModelError`` if it was trained on another
    front end or audio settings than installed, or is in the format before ensembles."""
    name, front_name, suffix = HEAD_FILES[backend]
    info = read_info(name, model_dir)
    weights = asset_path(f"{name}.{suffix}", model_dir)
    front_end = read_info(front_name, model_dir)["version"]
    if info.get("audio") != audio_settings() or info.get("front_end") != front_end:
        raise ModelError(f"{weights} was trained on front end {info.get('front_end')} with audio settings "
                         f"{info.get('audio')}; installed is {front_end} computing {audio_settings()}")
    if "members" not in info:
        raise ModelError(f"{weights} holds one network in the format before ensembles: retrain it "
                         "(queueemo train clip) or reinstall queueemo")
    return info, weights


# Segments run through the LSTMs together: the gates of 32 segments of 64 windows take ~5 MB, so a
# 2-hour track (450 segments) does not hold ~75 MB of them at once.
SEGMENT_BATCH = 32


@dataclass(frozen=True)
class EnsembleHead:
    """Weights of every member stacked on a leading axis (float32)."""

    input_mean: np.ndarray  # (members, inputs)
    input_std: np.ndarray  # (members, inputs)
    project_weight: np.ndarray  # (members, projection, inputs)
    project_bias: np.ndarray  # (members, projection)
    lstm_ih: np.ndarray  # (members, 2, 4·hidden, projection)
    lstm_hh: np.ndarray  # (members, 2, 4·hidden, hidden)
    lstm_bias: np.ndarray  # (members, 2, 4·hidden)
    head_weight: np.ndarray  # (members, 2, projection + 2·hidden)
    head_bias: np.ndarray  # (members, 2)
    segment_windows: int

    @classmethod
    def from_state(cls, state: Mapping[str, np.ndarray], config: Mapping[str, object], members: int,
                   segment_windows: int) -> EnsembleHead:
        """From ``ClipEnsembleV2.state_dict()`` as numpy arrays and its config (``ClipV2Config`` as a dict);
        ``ModelError`` for a configuration this runtime does not compute or a missing array."""
        if config.get("descriptors") or config.get("linear"):
            raise ModelError("the numpy runtime computes heads without descriptors or linear read-out only")

        def stacked(name: str, reverse: bool = False) -> np.ndarray:
            try:
                if reverse:
                    pairs = [(state[f"members.{m}.{name}"], state[f"members.{m}.{name}_reverse"])
                             for m in range(members)]
                    return np.stack([np.stack(pair) for pair in pairs]).astype(np.float32)
                return np.stack([state[f"members.{m}.{name}"] for m in range(members)]).astype(np.float32)
            except KeyError as exc:
                raise ModelError(f"clip head weights lack {exc.args[0]}") from exc

        return cls(
            input_mean=stacked("input_mean"), input_std=stacked("input_std"),
            project_weight=stacked("project.weight"), project_bias=stacked("project.bias"),
            lstm_ih=stacked("context_lstm.weight_ih_l0", reverse=True),
            lstm_hh=stacked("context_lstm.weight_hh_l0", reverse=True),
            lstm_bias=stacked("context_lstm.bias_ih_l0", reverse=True)
            + stacked("context_lstm.bias_hh_l0", reverse=True),
            head_weight=stacked("head.weight"), head_bias=stacked("head.bias"),
            segment_windows=segment_windows,
        )

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        """(n, inputs) per-window embeddings of a track → (n, 2) float32 arousal/valence in −1..1."""
        n = len(embeddings)
        x = (np.asarray(embeddings, dtype=np.float32)[None, :, : self.input_mean.shape[1]]
             - self.input_mean[:, None]) / self.input_std[:, None]  # (members, n, inputs)
        projected = gelu(x @ np.swapaxes(self.project_weight, 1, 2) + self.project_bias[:, None])
        length = min(n, self.segment_windows)
        starts = segment_starts(n, self.segment_windows)
        out = np.concatenate([self._segments(projected, starts[i : i + SEGMENT_BATCH], length)
                              for i in range(0, len(starts), SEGMENT_BATCH)])
        return blend_segments(out, starts, n)

    def _segments(self, projected: np.ndarray, starts: list[int], length: int) -> np.ndarray:
        """(segments, length, 2) members' mean over the segments at ``starts`` of the projections."""
        segments = np.stack([projected[:, s : s + length] for s in starts], axis=1)  # (m, seg, len, p)
        context = bidirectional_lstms(segments, self.lstm_ih, self.lstm_hh, self.lstm_bias)
        features = np.concatenate([segments, context], axis=-1)
        out = np.tanh(features @ np.swapaxes(self.head_weight, 1, 2)[:, None] + self.head_bias[:, None, None])
        return out.mean(axis=0)
