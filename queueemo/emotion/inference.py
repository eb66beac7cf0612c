"""Run the clip model: audio file → emotion trajectory, with windows batched through torch.

The weights' JSON names the audio settings they were trained with; loading refuses a mismatch rather
than producing quiet nonsense.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from queueemo.assets import asset_path, read_info
from queueemo.audio import WindowObserver, feature_parameters, iter_log_mel
from queueemo.emotion.network import ClipConfig, ClipEnsembleV2, ClipModel, ClipModelV2
from queueemo.emotion.segments import blend_segments, segment_starts
from queueemo.errors import AudioError, ModelError

CLIP_NAME = "clip"
ModelT = TypeVar("ModelT", bound=torch.nn.Module)


@lru_cache(maxsize=4)
def load_clip_model(model_dir: Path | None = None) -> tuple[ClipModel, str]:
    """The clip model in eval mode and its version string (cached per process)."""
    info = read_info(CLIP_NAME, model_dir)
    weights = asset_path(f"{CLIP_NAME}.pt", model_dir)
    expected = feature_parameters()
    if info.get("features") != expected:
        raise ModelError(
            f"clip model in {weights.parent} was trained for other audio settings "
            f"({info.get('features')}); this code computes {expected}"
        )
    model = load_state(ClipModel(ClipConfig(**info["config"])), weights)
    model.segment_windows = int(info.get("segment_windows", model.segment_windows))
    return model.eval(), str(info["version"])


def load_state(model: ModelT, weights: Path) -> ModelT:
    """``model`` with the state dict in ``weights``; ``ModelError`` if it is damaged or does not fit."""
    try:
        if weights.suffix == ".npz":  # arrays, for weights that also run in numpy
            with np.load(weights) as arrays:
                state = {name: torch.from_numpy(np.array(value)) for name, value in arrays.items()}
        else:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except (OSError, RuntimeError, ValueError) as exc:
        raise ModelError(f"clip model {weights} is damaged or does not fit the network: {exc}") from exc
    return model


def contextualise(model: ClipModel | ClipModelV2 | ClipEnsembleV2, embeddings: torch.Tensor) -> np.ndarray:
    """(n, window_hidden) window embeddings of a track → (n, 2) trajectory.

    The context LSTM runs over segments as long as its training crops (``segment_windows`` in the
    weights' JSON), overlapping by half; each window's value is a triangular-weighted blend of the
    segments that hold it, so memory does not grow with track length.
    """
    n = embeddings.shape[0]
    length = min(n, model.segment_windows)
    starts = segment_starts(n, model.segment_windows)
    segments = torch.stack([embeddings[s : s + length] for s in starts])
    return blend_segments(model.from_embeddings(segments).numpy(), starts, n)


def predict_features(model: ClipModel | ClipModelV2 | ClipEnsembleV2, features: np.ndarray) -> np.ndarray:
    """(n, 2) trajectory from a track's precomputed per-window inputs: (n, 44, 128) log-mel windows
    for the seed model, (n, 200) musicnn embeddings for v2."""
    with torch.inference_mode():
        embeddings = model.embed_windows(torch.from_numpy(np.asarray(features, dtype=np.float32)))
        return contextualise(model, embeddings)


def analyze_file(path: str | os.PathLike[str], model_dir: Path | None = None, *,
                 observe: WindowObserver | None = None) -> np.ndarray:
    """(n_windows, 2) float32 arousal/valence of an audio file; ``AudioError`` if not decodable.

    ``observe`` sees every decoded block of windows (see ``audio.decode_windows``).
    """
    model, _ = load_clip_model(model_dir)
    embeddings = []
    with torch.inference_mode():
        for block in iter_log_mel(path, observe):
            embeddings.append(model.embed_windows(torch.from_numpy(block)))
        if not embeddings:
            raise AudioError(path, "shorter than one 0.25 s of sound")
        return contextualise(model, torch.cat(embeddings))
