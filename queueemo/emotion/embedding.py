"""Audio file → one musicnn embedding per 0.5-s window (the v2 front end).

Decodes once at 16 kHz, computes musicnn's mel spectrogram in torch as a stream (exactly the frames
librosa's centred STFT gives for the whole track), runs the network's convolutional part over
stretches of frames with enough context that every frame equals a whole-track pass, and pools the 3-s
patch centred on each window. Memory is bounded by the float16 mel of the track (~12 MB per hour)
and one stretch of activations, not by track length × network width.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from queueemo.audio import WINDOW_SECONDS, WindowObserver, decode_windows
from queueemo.emotion import patch_stream
from queueemo.emotion.descriptors import DescriptorStream
from queueemo.emotion.musicnn import EMBEDDING_SIZE, CompactMusicnn, Musicnn
from queueemo.emotion.musicnn_input import (
    FLOAT16_MAX,
    FRAMES_PER_WINDOW,
    FRONT_END_NAME,
    HOP_LENGTH,
    N_FFT,
    N_MELS,
    SAMPLE_RATE,
    checked_front_end,
    stft_chunks,
)
from queueemo.errors import AudioError, ModelError

# Windows embedded together (one pass over 64 s of frames): each pass recomputes its 3-s patch and
# 2 × 73 frames of context, 7 % more frames at 128 windows against 40 % at 24. Activations of a pass
# take ~60 MB with the compact network. ``embed_mel`` per audio-hour (one core, machine loaded, noisy):
# 24 → 31–48 s, 64 → 38 s, 128 → 23–24 s, 256 → 30 s.
CHUNK_WINDOWS = 128


@dataclass(frozen=True)
class FrontEnd:
    """The loaded network (dead filters folded into constants) and its mel filter bank."""

    network: torch.nn.Module  # CompactMusicnn, Musicnn or the distilled student (``student``)
    mel_basis: torch.Tensor  # (96, 257)
    window: torch.Tensor  # Hann, periodic, 512


def state_from_arrays(arrays: dict[str, np.ndarray]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Split a converted ``.npz`` into the network's state dict and the mel basis."""
    state = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in arrays.items()
             if k != "mel_basis"}
    for name in list(state):
        if name.endswith("running_mean"):
            state[name.replace("running_mean", "num_batches_tracked")] = torch.tensor(0)
    return state, torch.from_numpy(np.asarray(arrays["mel_basis"], dtype=np.float32))


def load_full_network(model_dir: Path | None = None) -> tuple[Musicnn, torch.Tensor]:
    """The converted musicnn exactly as converted (eval mode) and its mel basis.

    Refuses weights made for other settings or altered.
    """
    remedy = "reinstall queueemo or run scripts/convert_musicnn.py"
    weights = checked_front_end(FRONT_END_NAME, model_dir, remedy)
    network = Musicnn()
    try:
        with np.load(weights) as arrays:
            state, basis = state_from_arrays(dict(arrays))
        network.load_state_dict(state)
    except (OSError, KeyError, RuntimeError, ValueError) as exc:
        raise ModelError(f"{weights} does not fit the musicnn network: {exc}") from exc
    return network.eval(), basis


@lru_cache(maxsize=2)
def load_front_end(model_dir: Path | None = None) -> FrontEnd:
    """The converted musicnn, compacted for analysis (see ``CompactMusicnn``), in eval mode."""
    network, basis = load_full_network(model_dir)
    return FrontEnd(CompactMusicnn(network).eval(), basis, torch.hann_window(N_FFT))


def mel_power(front: FrontEnd, samples: torch.Tensor) -> torch.Tensor:
    """Uncentred frames of ``samples`` (hop 256) → (frames, 96) mel power rounded to float16."""
    spectrum = torch.stft(samples, n_fft=N_FFT, hop_length=HOP_LENGTH, window=front.window,
                          center=False, return_complex=True)
    mel = front.mel_basis @ spectrum.abs().square()
    return mel.clamp_(max=FLOAT16_MAX).T.to(torch.float16)  # musicnn stores float16 before the log


def log_compress(power: torch.Tensor) -> torch.Tensor:
    """musicnn's input scale: log10(10000 · mel + 1), float32."""
    return torch.log10(power.float() * 10000.0 + 1.0)


def iter_mel(front: FrontEnd, blocks: Iterator[np.ndarray]) -> Iterator[tuple[torch.Tensor, int]]:
    """Windows of 16-kHz samples → (next (frames, 96) float16 mel power, windows so far) per block.

    Together the frames equal a centred STFT with zero padding over the concatenated signal.
    """
    for samples, n_windows in stft_chunks(blocks):
        if len(samples):
            yield mel_power(front, torch.from_numpy(samples)), n_windows
        else:
            yield torch.zeros((0, N_MELS), dtype=torch.float16), n_windows


def stream_mel(front: FrontEnd, blocks: Iterator[np.ndarray]) -> tuple[torch.Tensor, int]:
    """Windows of 16-kHz samples → ((frames, 96) float16 mel power of the whole signal, windows)."""
    parts = list(iter_mel(front, blocks))
    return torch.cat([mel for mel, _ in parts]), parts[-1][1]


@dataclass(frozen=True)
class TorchPatchNetwork:
    """A torch network with musicnn's interface (musicnn, compact or whole, or the torch student)
    driven by ``patch_stream`` in numpy: its features are computed in torch, everything else is shared
    with the torch-free runtime."""

    network: torch.nn.Module
    embedding_size: int = EMBEDDING_SIZE

    @property
    def receptive_margin(self) -> int:
        return self.network.receptive_margin

    @property
    def stride(self) -> int:
        return self.network.stride

    def varying_features(self, log_mel: np.ndarray) -> np.ndarray:
        return self.network.varying_features(torch.from_numpy(log_mel)[None])[0].numpy()

    def embed_varying(self, maximum: np.ndarray, mean: np.ndarray) -> np.ndarray:
        return self.network.embed_varying(torch.from_numpy(maximum), torch.from_numpy(mean)).numpy()


def embed_mel(network: torch.nn.Module, power: torch.Tensor, n_windows: int,
              chunk_windows: int = CHUNK_WINDOWS) -> torch.Tensor:
    """(frames, 96) mel power of a whole track → (n_windows, 200) embeddings."""
    return torch.from_numpy(patch_stream.embed_mel(TorchPatchNetwork(network), power.numpy(), n_windows,
                                                   chunk_windows))


def embed_stream(front: FrontEnd, blocks: Iterator[np.ndarray], chunk_windows: int = CHUNK_WINDOWS,
                 descriptors: DescriptorStream | None = None) -> torch.Tensor:
    """Windows of 16-kHz samples → (n_windows, 200), equal to ``embed_mel`` of the whole track, with
    memory bounded as ``patch_stream.embed_stream`` says. ``descriptors``, if given, sees every mel
    frame once, in order."""

    def mel_chunks() -> Iterator[tuple[np.ndarray, int]]:
        for mel, n_windows in iter_mel(front, blocks):
            if descriptors is not None:
                descriptors.add(mel)
            yield mel.numpy(), n_windows

    return torch.from_numpy(patch_stream.embed_stream(TorchPatchNetwork(front.network), mel_chunks(),
                                                      chunk_windows))


def _window_range(blocks: Iterator[np.ndarray], first: int, count: int | None) -> Iterator[np.ndarray]:
    """Only windows ``first`` … ``first + count`` of a stream of window blocks."""
    seen = 0
    for block in blocks:
        lo, hi = max(first - seen, 0), len(block) if count is None else min(first + count - seen, len(block))
        seen += len(block)
        if hi > lo:
            yield block[lo:hi]
        if count is not None and seen >= first + count:
            return


def embed_file(path: str | os.PathLike[str], model_dir: Path | None = None, *,
               first_window: int = 0, max_windows: int | None = None,
               observe: WindowObserver | None = None, descriptors: bool = True,
               front_end: FrontEnd | None = None) -> np.ndarray:
    """(n_windows, 200 + 4) float32 per 0.5-s window: musicnn's embedding, then the window's acoustic
    descriptors (``descriptors.DESCRIPTOR_NAMES``, relative to this file or excerpt); only the
    embedding, (n_windows, 200), if ``descriptors`` is false (a model that does not read them).

    ``first_window``/``max_windows`` embed only part of the file (training uses excerpts of emopia);
    ``observe`` sees every decoded block (see ``audio.decode_windows``); ``front_end`` replaces
    musicnn (the distilled student of ``v2-lite``, ``student.load_student``).
    """
    front = front_end or load_front_end(model_dir)
    blocks = decode_windows(path, sample_rate=SAMPLE_RATE, observe=observe)
    if first_window or max_windows is not None:
        blocks = _window_range(blocks, first_window, max_windows)
    stream = DescriptorStream() if descriptors else None
    with torch.inference_mode():
        embeddings = embed_stream(front, blocks, descriptors=stream)
    if len(embeddings) == 0:
        raise AudioError(path, f"shorter than {WINDOW_SECONDS / 2} s of sound")
    if stream is None:
        return embeddings.numpy()
    return np.concatenate([embeddings.numpy(), stream.windows(len(embeddings), FRAMES_PER_WINDOW)], axis=1)
