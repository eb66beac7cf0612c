"""Run the v2 clip model: audio file → musicnn embeddings → emotion trajectory.

The weights' JSON names the front end (converted musicnn weights) and audio settings they were trained
on; loading refuses a mismatch rather than producing quiet nonsense.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from queueemo.assets import asset_path, read_info
from queueemo.audio import WindowObserver
from queueemo.emotion.embedding import FRONT_END_NAME, audio_settings, embed_file
from queueemo.emotion.inference import load_state, predict_features
from queueemo.emotion.network import ClipEnsembleV2, ClipV2Config
from queueemo.errors import ModelError

CLIP_V2_NAME = "clip_v2"


@lru_cache(maxsize=4)
def load_clip_v2(model_dir: Path | None = None) -> tuple[ClipEnsembleV2, str]:
    """The v2 clip model (an ensemble of ``members`` networks, one weights file) in eval mode and its
    version string (cached per process)."""
    info = read_info(CLIP_V2_NAME, model_dir)
    weights = asset_path(f"{CLIP_V2_NAME}.pt", model_dir)
    front_end = read_info(FRONT_END_NAME, model_dir)["version"]
    if info.get("audio") != audio_settings() or info.get("front_end") != front_end:
        raise ModelError(
            f"{weights} was trained on front end {info.get('front_end')} with audio settings "
            f"{info.get('audio')}; installed is {front_end} computing {audio_settings()}"
        )
    if "members" not in info:
        raise ModelError(f"{weights} holds one network in the format before ensembles: retrain it "
                         "(queueemo train clip) or reinstall queueemo")
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
