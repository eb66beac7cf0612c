"""Run the v2 clip model: audio file → musicnn embeddings → emotion trajectory.

The weights' JSON names the front end (converted musicnn weights) and audio settings they were trained
on; loading refuses a mismatch rather than producing quiet nonsense. ``load_clip_v2`` also loads the
v2-lite head as a torch module, for training and evaluation (analysis runs it in numpy:
``inference_lite``).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from queueemo.audio import WindowObserver
from queueemo.emotion.embedding import embed_file
from queueemo.emotion.inference import load_state, predict_features
from queueemo.emotion.network import ClipEnsembleV2, ClipV2Config
from queueemo.emotion.numpy_head import head_info


@lru_cache(maxsize=4)
def load_clip_v2(model_dir: Path | None = None, backend: str = "v2") -> tuple[ClipEnsembleV2, str]:
    """The v2 clip model (an ensemble of ``members`` networks, one weights file) of ``backend`` (v2 or
    v2-lite) in eval mode and its version string (cached per process)."""
    info, weights = head_info(backend, model_dir)
    model = load_state(ClipEnsembleV2(ClipV2Config(**info["config"]), int(info["members"])), weights)
    model.segment_windows = int(info["segment_windows"])
    return model.eval(), str(info["version"])


def analyze_file_v2(path: str | os.PathLike[str], model_dir: Path | None = None, *,
                    observe: WindowObserver | None = None) -> np.ndarray:
    """(n_windows, 2) float32 arousal/valence of an audio file; ``AudioError`` if not decodable.

    ``observe`` sees every decoded block of windows (see ``audio.decode_windows``).
    """
    model, _ = load_clip_v2(model_dir)
    features = embed_file(path, model_dir, observe=observe, descriptors=model.config.descriptors > 0)
    return predict_features(model, features)
