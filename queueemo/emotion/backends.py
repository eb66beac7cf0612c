"""The one model seam: every caller (analyze, scan, evaluate) picks a clip-model backend by name.

A backend turns an audio file into an (n, 2) arousal/valence trajectory at one point per
``audio.WINDOW_SECONDS``. Its ``version`` names the backend and its weights and is stored with every
analysed track, so changing the model (or its weights) makes the next scan re-analyse.

``v2``   musicnn (MSD) embeddings at 16 kHz → LSTM across windows (the default)
``v2-lite`` the same LSTM design on a small network distilled from musicnn, in numpy (no torch)
``seed`` the log-mel LSTM of arXiv 2403.17379 at 44.1 kHz (the reference design)

Backends are plain objects named by a string, so the name travels to spawned scan workers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np

from queueemo.audio import WindowObserver
from queueemo.config import EMOTION_MODELS
from queueemo.errors import ConfigError

BACKEND_NAMES = EMOTION_MODELS
DEFAULT_BACKEND = EMOTION_MODELS[0]


class Backend(Protocol):
    """What the rest of queueemo needs from a clip model."""

    name: str
    uses_torch: bool  # analysis imports torch (its threads are then set for analysis too)
    preload: tuple[str, ...]  # modules a forkserver imports once for every worker it forks

    @property
    def version(self) -> str:
        """``<backend>/<weights version>``: cheap (reads the weights' JSON only)."""

    def analyze(self, path: str | os.PathLike[str], *, observe: WindowObserver | None = None) -> np.ndarray:
        """(n_windows, 2) float32 trajectory; ``AudioError`` if the file is not decodable audio.

        ``observe(block, sample_rate)`` sees every decoded block of windows (audible boundaries ride
        along the same decode).
        """

    def warm_up(self) -> None:
        """Load weights and feature code now rather than on the first file."""


class SeedBackend:
    """The log-mel LSTM (``clip.pt``)."""

    name = "seed"
    uses_torch = True
    preload = ("torch", "queueemo.emotion.inference")

    def __init__(self, model_dir: Path | None = None) -> None:
        self.model_dir = model_dir

    @property
    def version(self) -> str:
        from queueemo.assets import read_info

        return f"{self.name}/{read_info('clip', self.model_dir)['version']}"

    def analyze(self, path: str | os.PathLike[str], *, observe: WindowObserver | None = None) -> np.ndarray:
        from queueemo.emotion.inference import analyze_file

        return analyze_file(path, self.model_dir, observe=observe)

    def warm_up(self) -> None:
        from queueemo.audio import WINDOW_SAMPLES, log_mel
        from queueemo.emotion.inference import load_clip_model

        load_clip_model(self.model_dir)
        log_mel(np.zeros((1, WINDOW_SAMPLES), dtype=np.float32))


class V2Backend:
    """musicnn embeddings → LSTM (``musicnn_msd.npz`` + ``clip_v2.pt``)."""

    name = "v2"
    uses_torch = True
    preload = ("torch", "queueemo.emotion.inference_v2")
    head = "clip_v2"

    def __init__(self, model_dir: Path | None = None) -> None:
        self.model_dir = model_dir

    @property
    def version(self) -> str:
        from queueemo.assets import read_info

        return f"{self.name}/{read_info(self.head, self.model_dir)['version']}"

    def analyze(self, path: str | os.PathLike[str], *, observe: WindowObserver | None = None) -> np.ndarray:
        from queueemo.emotion.inference_v2 import analyze_file_v2

        return analyze_file_v2(path, self.model_dir, observe=observe)

    def warm_up(self) -> None:
        from queueemo.emotion.embedding import load_front_end
        from queueemo.emotion.inference_v2 import load_clip_v2

        load_front_end(self.model_dir)
        load_clip_v2(self.model_dir)


class V2LiteBackend(V2Backend):
    """The student distilled from musicnn → the same LSTM head design, run in numpy without torch
    (``musicnn_student.npz`` + ``clip_v2_lite.npz``); the head's JSON names the student it was trained
    on, so the version changes with either."""

    name = "v2-lite"
    uses_torch = False
    preload = ("queueemo.emotion.inference_lite",)
    head = "clip_v2_lite"

    def analyze(self, path: str | os.PathLike[str], *, observe: WindowObserver | None = None) -> np.ndarray:
        from queueemo.emotion.inference_lite import analyze_file_lite

        return analyze_file_lite(path, self.model_dir, observe=observe)

    def warm_up(self) -> None:
        from queueemo.emotion.inference_lite import load_lite_head
        from queueemo.emotion.musicnn_input import N_FFT, hann_window, mel_power
        from queueemo.emotion.numpy_student import load_numpy_student

        _, basis = load_numpy_student(self.model_dir)
        load_lite_head(self.model_dir)
        mel_power(np.zeros(N_FFT, dtype=np.float32), basis, hann_window())  # imports the FFT


def get_backend(name: str | None = None, model_dir: Path | None = None) -> Backend:
    """The backend called ``name`` (default: the first of ``config.EMOTION_MODELS``); ``ConfigError``
    for an unknown name."""
    name = name or DEFAULT_BACKEND
    if name == "v2":
        return V2Backend(model_dir)
    if name == "v2-lite":
        return V2LiteBackend(model_dir)
    if name == "seed":
        return SeedBackend(model_dir)
    raise ConfigError(f"unknown emotion model {name!r}: choose one of {', '.join(BACKEND_NAMES)}")
