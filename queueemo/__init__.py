"""queueemo: an emotion-aware queue daemon for MPD.

Public Python API (heavy modules load on first use, so importing queueemo is cheap)::

    queueemo.analyze(path, model=None) -> (n_windows, 2) array of (arousal, valence) at 2 Hz
    queueemo.forecast(history, steps)  -> (steps, 2) array: where the emotion goes next
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from queueemo.errors import (
    AudioError,
    ConfigError,
    DatabaseError,
    ModelError,
    PlayerError,
    QueueemoError,
)

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "AudioError",
    "ConfigError",
    "DatabaseError",
    "ModelError",
    "PlayerError",
    "QueueemoError",
    "__version__",
    "analyze",
    "forecast",
]

__version__ = "0.1.0"


def analyze(path: str | os.PathLike[str], model: str | None = None) -> np.ndarray:
    """Emotion trajectory of one audio file: (n_windows, 2) float32 (arousal, valence) in −1..1.

    One row per 0.5 s window from t = 0. ``model``: "v2" (default) or "seed". Raises ``AudioError``
    when the file is not decodable audio.
    """
    from queueemo.emotion.backends import get_backend
    from queueemo.threads import analysis_threads

    backend = get_backend(model)
    with analysis_threads(torch=backend.uses_torch):
        return backend.analyze(path)


def forecast(history: np.ndarray, steps: int = 1) -> np.ndarray:
    """Forecast the next ``steps`` (arousal, valence) points at 2 Hz from an (n, 2) history, n ≥ 1.

    Histories shorter than the model's 10-point context are left-padded with their first value
    (a track that has just begun is assumed to have held its opening emotion); longer ones use the
    last 10 points. Multi-step forecasts feed each prediction back as input.
    """
    from queueemo.emotion.forecast import forecast_points

    return forecast_points(history, steps)
