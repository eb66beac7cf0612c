"""Run the ``v2-lite`` clip model without torch: audio → the distilled student's embeddings → the v2
head, all in numpy.

A scan worker for this backend never imports torch (~2 CPU-s and ~200 MB each). The weights' JSON
names the student the head was trained on and the audio settings; loading refuses a mismatch.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from queueemo.audio import WINDOW_SECONDS, WindowObserver, decode_windows
from queueemo.emotion.musicnn_input import SAMPLE_RATE, hann_window, mel_power, stft_chunks
from queueemo.emotion.numpy_head import EnsembleHead, head_info
from queueemo.emotion.numpy_student import NumpyStudent, load_numpy_student
from queueemo.emotion.patch_stream import embed_stream
from queueemo.errors import AudioError, ModelError

# Windows embedded per pass: the student's context is 31 frames either side, so passes can be short;
# 128 windows (64 s) keep the per-pass overhead small and a pass's activations at a few MB.
CHUNK_WINDOWS = 128


@lru_cache(maxsize=2)
def load_lite_head(model_dir: Path | None = None) -> tuple[EnsembleHead, str]:
    """The v2-lite head (an ensemble, ``clip_v2_lite.npz``) and its version; ``ModelError`` if it was
    trained on another student or other audio settings, or is damaged."""
    info, weights = head_info("v2-lite", model_dir)
    try:
        with np.load(weights) as stored:
            state = {name: np.asarray(value) for name, value in stored.items()}
    except (OSError, ValueError) as exc:
        raise ModelError(f"{weights} is damaged: {exc}") from exc
    head = EnsembleHead.from_state(state, info["config"], int(info["members"]), int(info["segment_windows"]))
    return head, str(info["version"])


def embed_file_lite(path: str | os.PathLike[str], student: NumpyStudent, mel_basis: np.ndarray, *,
                    observe: WindowObserver | None = None) -> np.ndarray:
    """(n_windows, 200) student embeddings of an audio file, streamed; ``AudioError`` if not decodable."""
    window = hann_window()
    blocks = decode_windows(path, sample_rate=SAMPLE_RATE, observe=observe)
    mel_chunks = ((mel_power(samples, mel_basis, window), n) for samples, n in stft_chunks(blocks))
    embeddings = embed_stream(student, mel_chunks, CHUNK_WINDOWS)
    if len(embeddings) == 0:
        raise AudioError(path, f"shorter than {WINDOW_SECONDS / 2} s of sound")
    return embeddings


def analyze_file_lite(path: str | os.PathLike[str], model_dir: Path | None = None, *,
                      observe: WindowObserver | None = None) -> np.ndarray:
    """(n_windows, 2) float32 arousal/valence of an audio file; ``AudioError`` if not decodable."""
    student, mel_basis = load_numpy_student(model_dir)
    head, _ = load_lite_head(model_dir)
    return head.predict(embed_file_lite(path, student, mel_basis, observe=observe))
