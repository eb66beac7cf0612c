"""Audio file → one musicnn embedding per 0.5-s window (the v2 front end).

Decodes once at 16 kHz, computes musicnn's mel spectrogram in torch as a stream (exactly the frames
librosa's centred STFT gives for the whole track), runs the network's convolutional part over
stretches of frames with enough context that every frame equals a whole-track pass, and pools the 3-s
patch centred on each window. Memory is bounded by the float16 mel of the track (~12 MB per hour)
and one stretch of activations, not by track length × network width.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from queueemo.assets import asset_path, read_info
from queueemo.audio import WINDOW_SECONDS, WindowObserver, decode_windows
from queueemo.emotion.descriptors import DescriptorStream
from queueemo.emotion.musicnn import (
    EMBEDDING_SIZE,
    N_MELS,
    PATCH_FRAMES,
    RECEPTIVE_MARGIN,
    CompactMusicnn,
    Musicnn,
)
from queueemo.errors import AudioError, ModelError

FRONT_END_NAME = "musicnn_msd"
SAMPLE_RATE = 16_000
N_FFT = 512
HOP_LENGTH = 256
FRAMES_PER_WINDOW = WINDOW_SECONDS * SAMPLE_RATE / HOP_LENGTH  # 31.25
FLOAT16_MAX = 65504.0
# Windows embedded together (one pass over 64 s of frames): each pass recomputes its 3-s patch and
# 2 × 73 frames of context, 7 % more frames at 128 windows against 40 % at 24. Activations of a pass
# take ~60 MB with the compact network. ``embed_mel`` per audio-hour (one core, machine loaded, noisy):
# 24 → 31–48 s, 64 → 38 s, 128 → 23–24 s, 256 → 30 s.
CHUNK_WINDOWS = 128


def audio_settings() -> dict[str, float | int | str]:
    """The input the converted weights expect; stored in their JSON and checked at load."""
    return {
        "sample_rate": SAMPLE_RATE,
        "n_fft": N_FFT,
        "hop_length": HOP_LENGTH,
        "n_mels": N_MELS,
        "mel": "slaney, centred STFT, zero padding, hann",
        "scale": "log10(10000 * float16(mel power) + 1)",
        "patch_frames": PATCH_FRAMES,
        "window_seconds": WINDOW_SECONDS,
    }


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class FrontEnd:
    """The loaded network (dead filters folded into constants) and its mel filter bank."""

    network: CompactMusicnn | Musicnn | torch.nn.Module  # or the distilled student (``student``)
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
    info = read_info(FRONT_END_NAME, model_dir)
    weights = asset_path(f"{FRONT_END_NAME}.npz", model_dir)
    if info.get("audio") != audio_settings():
        raise ModelError(f"{weights} expects audio settings {info.get('audio')}; this code computes "
                         f"{audio_settings()}")
    if file_sha256(weights) != info.get("sha256"):
        raise ModelError(f"{weights} does not match the checksum in {FRONT_END_NAME}.json "
                         "(damaged or replaced: reinstall queueemo or run scripts/convert_musicnn.py)")
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
    half = N_FFT // 2
    pending = torch.zeros(half)
    n_windows = 0
    for block in blocks:
        n_windows += len(block)
        pending = torch.cat([pending, torch.from_numpy(np.array(block, dtype=np.float32).ravel())])
        count = (len(pending) - N_FFT) // HOP_LENGTH + 1
        if count > 0:
            yield mel_power(front, pending[: (count - 1) * HOP_LENGTH + N_FFT]), n_windows
            pending = pending[count * HOP_LENGTH :]
    pending = torch.cat([pending, torch.zeros(half)])
    if len(pending) >= N_FFT:
        yield mel_power(front, pending), n_windows
    else:
        yield torch.zeros((0, N_MELS), dtype=torch.float16), n_windows


def stream_mel(front: FrontEnd, blocks: Iterator[np.ndarray]) -> tuple[torch.Tensor, int]:
    """Windows of 16-kHz samples → ((frames, 96) float16 mel power of the whole signal, windows)."""
    parts = list(iter_mel(front, blocks))
    return torch.cat([mel for mel, _ in parts]), parts[-1][1]


def patch_starts(n_windows: int, n_frames: int) -> np.ndarray:
    """First frame of the 3-s patch centred on each window (clipped to the track)."""
    centres = (np.arange(n_windows) + 0.5) * FRAMES_PER_WINDOW
    starts = np.floor(centres - PATCH_FRAMES / 2 + 0.5).astype(np.int64)
    return np.clip(starts, 0, max(n_frames - PATCH_FRAMES, 0))


def _embed_windows(network: Musicnn | CompactMusicnn, power: torch.Tensor, base: int, starts: np.ndarray,
                   length: int, n_frames: int) -> torch.Tensor:
    """Embeddings of the patches at global frames ``starts`` from mel frames ``base`` … onwards.

    A pass starts at a multiple of the network's ``stride`` (1 for musicnn), so a strided network
    sees the same frame phase as in a whole-track pass.
    """
    margin, stride = _margin_stride(network)
    lo = max(0, int(starts[0]) - margin) // stride * stride
    hi = min(n_frames, int(starts[-1]) + length + margin)
    features = network.varying_features(log_compress(power[lo - base : hi - base])[None])[0]
    maximum, mean = _pool_patches(features.numpy(), starts - lo, length)
    return network.embed_varying(torch.from_numpy(maximum), torch.from_numpy(mean))


def _margin_stride(network: torch.nn.Module) -> tuple[int, int]:
    """Frames of context either side of a frame's features, and the frame stride of a pass."""
    return getattr(network, "receptive_margin", RECEPTIVE_MARGIN), getattr(network, "stride", 1)


def _pool_patches(features: np.ndarray, starts: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Max and mean over frames ``start … start + length`` of (channels, frames) features, per start.

    Means come from cumulative sums (float64). Patches overlap by five sixths: for the maxima, the
    frames are cut where any patch starts or ends, each piece is reduced once, and a patch takes the
    maximum of its few pieces (its piece indices padded by repeating its last one).
    """
    used = features[:, : int(starts[-1]) + length]
    sums = np.zeros((len(used), used.shape[1] + 1))
    np.cumsum(used, axis=1, dtype=np.float64, out=sums[:, 1:])
    mean = ((sums[:, starts + length] - sums[:, starts]) / length).T.astype(np.float32)
    cuts = np.unique(np.concatenate([starts, starts + length]))
    piece_max = np.maximum.reduceat(used, cuts[:-1], axis=1)
    first, last = np.searchsorted(cuts, starts), np.searchsorted(cuts, starts + length)
    pieces = np.minimum(first[:, None] + np.arange(int((last - first).max())), last[:, None] - 1)
    return piece_max[:, pieces].max(axis=2).T, mean


def embed_mel(network: Musicnn | CompactMusicnn, power: torch.Tensor, n_windows: int,
              chunk_windows: int = CHUNK_WINDOWS) -> torch.Tensor:
    """(frames, 96) mel power of a whole track → (n_windows, 200) embeddings."""
    n_frames = len(power)
    length = min(PATCH_FRAMES, n_frames)
    starts = patch_starts(n_windows, n_frames)
    return torch.cat([_embed_windows(network, power, 0, starts[i : i + chunk_windows], length, n_frames)
                      for i in range(0, n_windows, chunk_windows)])


def embed_stream(front: FrontEnd, blocks: Iterator[np.ndarray], chunk_windows: int = CHUNK_WINDOWS,
                 descriptors: DescriptorStream | None = None) -> torch.Tensor:
    """Windows of 16-kHz samples → (n_windows, 200), equal to ``embed_mel`` of the whole track.

    Windows are embedded as soon as their patch and its context have been decoded, and mel frames
    no later window needs are dropped, so memory does not grow with track length. ``descriptors``,
    if given, sees every mel frame once, in order.
    """
    buffer = torch.zeros((0, N_MELS), dtype=torch.float16)
    base = done = n_windows = 0
    margin, stride = _margin_stride(front.network)
    out: list[torch.Tensor] = []
    for mel, n_windows in iter_mel(front, blocks):
        if descriptors is not None:
            descriptors.add(mel)
        buffer = torch.cat([buffer, mel])
        available = base + len(buffer)
        # Unclipped starts are final for windows whose patch and context end inside the frames so far.
        starts = patch_starts(n_windows, 1 << 62)[done:]
        ready = int(np.sum(starts + PATCH_FRAMES + margin <= available))
        ready -= ready % chunk_windows
        for i in range(0, ready, chunk_windows):
            out.append(_embed_windows(front.network, buffer, base, starts[i : i + chunk_windows],
                                      PATCH_FRAMES, available))
        done += ready
        if done < n_windows:  # keep what the remaining windows (possibly clipped at the end) need
            keep = max(0, min(int(starts[ready]), available - PATCH_FRAMES) - margin) // stride * stride
            buffer, base = buffer[keep - base :], keep
    n_frames = base + len(buffer)
    if done < n_windows:
        starts = patch_starts(n_windows, n_frames)[done:]
        length = min(PATCH_FRAMES, n_frames)
        for i in range(0, len(starts), chunk_windows):
            out.append(_embed_windows(front.network, buffer, base, starts[i : i + chunk_windows],
                                      length, n_frames))
    return torch.cat(out) if out else torch.zeros((0, EMBEDDING_SIZE))


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
