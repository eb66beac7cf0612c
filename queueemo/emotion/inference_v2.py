"""Run the v2 clip model: audio file → musicnn embeddings → emotion trajectory (``v2``), or the same
head on the distilled student's embeddings (``v2-lite``, ``emotion.student``).

The weights' JSON names the front end (converted musicnn weights, or the student) and audio settings
they were trained on; loading refuses a mismatch rather than producing quiet nonsense.
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
from queueemo.emotion.student import STUDENT_NAME, load_student
from queueemo.errors import ModelError

CLIP_V2_NAME = "clip_v2"
CLIP_V2_LITE_NAME = "clip_v2_lite"
# Per backend: the head's asset name and the front end's (musicnn, or the student distilled from it).
HEADS = {"v2": (CLIP_V2_NAME, FRONT_END_NAME), "v2-lite": (CLIP_V2_LITE_NAME, STUDENT_NAME)}


@lru_cache(maxsize=4)
def load_clip_v2(model_dir: Path | None = None, backend: str = "v2") -> tuple[ClipEnsembleV2, str]:
    """The v2 clip model (an ensemble of ``members`` networks, one weights file) of ``backend`` (v2 or
    v2-lite) in eval mode and its version string (cached per process)."""
    name, front_name = HEADS[backend]
    info = read_info(name, model_dir)
    weights = asset_path(f"{name}.pt", model_dir)
    front_end = read_info(front_name, model_dir)["version"]
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
                    observe: WindowObserver | None = None, backend: str = "v2") -> np.ndarray:
    """(n_windows, 2) float32 arousal/valence of an audio file; ``AudioError`` if not decodable.

    ``observe`` sees every decoded block of windows (see ``audio.decode_windows``); ``backend`` v2-lite
    embeds with the student instead of musicnn.
    """
    model, _ = load_clip_v2(model_dir, backend)
    student = load_student(model_dir) if backend == "v2-lite" else None
    features = embed_file(path, model_dir, observe=observe, descriptors=model.config.descriptors > 0,
                          front_end=student)
    return predict_features(model, features)
