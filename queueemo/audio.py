"""Audio front end: path → mono 44.1 kHz samples → log-mel windows.

Everything that turns sound into model input lives here, so training, ``analyze`` and ``scan`` compute
identical features. Decoding streams: memory does not grow with track length.

Decoding uses ffmpeg, and libsndfile when ffmpeg is missing or rejects a file libsndfile reads. A file
that cannot be decoded raises ``AudioError`` with a one-line reason in the user's terms, the same for
every format: "not an audio file", "no audio stream", "corrupt data", "truncated: ..." (checked
against the container's declared length, a WAV header's data size, and an Ogg file's last page).
"""

from __future__ import annotations

import logging
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np

from queueemo.errors import AudioError, ModelError

log = logging.getLogger(__name__)

SAMPLE_RATE = 44_100
WINDOW_SECONDS = 0.5
WINDOW_SAMPLES = int(SAMPLE_RATE * WINDOW_SECONDS)  # 22,050
N_FFT = 2048
HOP_LENGTH = 512
N_MELS = 128
N_FRAMES = 1 + WINDOW_SAMPLES // HOP_LENGTH  # 44 (centred STFT)
# A trailing partial window is kept (zero-padded) when it holds at least this share of a window.
MIN_TAIL_SHARE = 0.5
# Windows decoded and transformed together: bounds memory (~5.6 MB of samples) and batches the STFT.
BLOCK_WINDOWS = 64
# Decoded blocks read ahead of the analysis by a thread (bounds memory at ~4 × 5.6 MB).
READ_AHEAD_BLOCKS = 4
# ffmpeg writes each decoded frame as it comes (20 ms for Opus): regrouped into frames of this many
# samples (same bytes, last frame unpadded), the pipe carries ~20 times fewer writes, which saves about
# a fifth of ffmpeg's CPU and three quarters of the reading thread's (``bench/worker_profile.py``).
FFMPEG_FRAME_SAMPLES = 16_384
# A decode that yields less than this share of the container's declared duration is truncated.
MIN_DECODED_SHARE = 0.9

AUDIO_EXTENSIONS = frozenset(
    {".mp3", ".ogg", ".oga", ".opus", ".flac", ".wav", ".m4a", ".aac", ".mp4", ".wma", ".aif",
     ".aiff", ".ape", ".wv", ".mpc", ".alac"}
)

_STEREO_FRAME_BYTES = 8  # two float32 samples
_DURATION_RE = re.compile(rb"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")


def feature_parameters() -> dict[str, float | int | str]:
    """The audio settings a model was trained with; stored beside the weights and checked at load."""
    return {
        "sample_rate": SAMPLE_RATE,
        "window_samples": WINDOW_SAMPLES,
        "n_fft": N_FFT,
        "hop_length": HOP_LENGTH,
        "n_mels": N_MELS,
        "n_frames": N_FRAMES,
        "scale": "log1p(mel power, slaney)",
    }


def _check_readable(path: Path) -> None:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise AudioError(path, f"cannot read file ({exc.strerror or exc})") from exc
    if not path.is_file():
        raise AudioError(path, "not a regular file")
    if size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    if not os.access(path, os.R_OK):
        raise AudioError(path, "permission denied")


def _declared_seconds(ffmpeg_log: bytes) -> float | None:
    match = _DURATION_RE.search(ffmpeg_log)
    if not match:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


_NOT_AUDIO = "not an audio file (format not recognised)"
_CORRUPT = "corrupt data"
_NO_SAMPLES = "no audio samples (an empty stream)"
_MP4_CUT = "incomplete MP4/M4A file: its index is missing (cut off while copying?)"
_CUT_IN_HEADERS = "truncated: the file ends before its first audio (cut off while copying?)"

# ffmpeg's words → the reason a user reads; the first match wins. ffmpeg's own line goes to the
# debug log: its wording ("add a trailing '?' to the map") is about ffmpeg's command line, not the file.
_FFMPEG_REASONS = (
    ("matches no streams", "no audio stream (a video or image file?)"),
    ("not found for input stream", "unsupported audio codec"),
    ("Permission denied", "permission denied"),
    ("low score", _NOT_AUDIO),
)
# ffmpeg's words for damaged data (checksums, broken packets) and for a frame it could not decode.
_DAMAGE_WORDS = ("CRC mismatch", "corrupt")
_FRAME_ERROR = "Error while decoding"


# The boxes an MP4/M4A file starts with: only then is a missing index a cut-off MP4.
_MP4_FIRST_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide")


def _ffmpeg_reason(ffmpeg_log: bytes, path: Path) -> str:
    """Why ffmpeg failed, in the user's terms."""
    text = ffmpeg_log.decode("utf-8", "replace")
    if "moov atom not found" in text:
        with path.open("rb") as file:
            looks_mp4 = file.read(8)[4:] in _MP4_FIRST_BOXES
        return _MP4_CUT if looks_mp4 else _NOT_AUDIO
    for needle, reason in _FFMPEG_REASONS:
        if needle in text:
            return reason
    if "Input #0" not in text:  # ffmpeg could not even open it as a container
        if any(word in text for word in _DAMAGE_WORDS):
            return _CORRUPT
        # Undamaged but ended early: a container ffmpeg knows, cut inside its headers.
        return _CUT_IN_HEADERS if "End of file" in text else _NOT_AUDIO
    return _CORRUPT


def _short_reason(ffmpeg_log: bytes, decoded_s: float, declared_s: float) -> str:
    """A decode shorter than declared: damaged all along (several decoding errors) or cut off."""
    text = ffmpeg_log.decode("utf-8", "replace")
    errors = sum(text.count(word) for word in (_FRAME_ERROR, *_DAMAGE_WORDS))
    kind = _CORRUPT if errors > 1 else "truncated"
    return f"{kind}: decoded {decoded_s:.1f} s of a declared {declared_s:.1f} s"


def _pump(stream, size: int, out: queue.Queue, stop: threading.Event) -> None:
    """Read ``stream`` in chunks of ``size`` into ``out`` until EOF (b"") or ``stop``."""
    try:
        while not stop.is_set():
            chunk = stream.read(size)
            while not stop.is_set():
                try:
                    out.put(chunk, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if not chunk:
                return
    except (OSError, ValueError):  # the consumer closed the pipe: it wants no more
        return


# A stereo block whose mid (L + R) is this far below its side (L − R) cancels in mono: its channels are
# (nearly) phase-inverted copies, and the side carries the sound. Ordinary stereo music has its side
# 5–15 dB below its mid; 20 dB the other way round happens only when the channels cancel.
CANCELLED_MID_DB = 20.0
_CANCELLED_POWER_RATIO = 10 ** (-CANCELLED_MID_DB / 10)
_INV_SQRT2 = np.float32(1 / np.sqrt(2))


def downmix(frames: np.ndarray) -> tuple[np.ndarray, bool]:
    """Mono float32 samples of interleaved frames (n, channels), and whether the channels cancelled.

    Stereo becomes (L + R)/√2, the same samples as ffmpeg's own mono downmix (and a mono source
    upmixed by ffmpeg, L = R = x/√2, becomes x again). A block whose mid is ``CANCELLED_MID_DB``
    below its side (phase-inverted channels) becomes (L − R)/√2 instead: otherwise a track that plays
    well in stereo reads as silence. More channels: their sum/√n.
    """
    channels = frames.shape[1]
    if channels == 1:
        return frames[:, 0], False
    if channels > 2:
        return (frames.sum(axis=1, dtype=np.float32) / np.float32(np.sqrt(channels))), False
    left, right = frames[:, 0], frames[:, 1]
    mid = (left + right) * _INV_SQRT2
    mid_power = float(np.dot(mid, mid))
    flat = frames.reshape(-1)
    side_power = float(np.dot(flat, flat)) - mid_power  # mid and side split the power of L and R
    if mid_power < _CANCELLED_POWER_RATIO * side_power:
        return (left - right) * _INV_SQRT2, True
    return mid, False


def _ffmpeg_blocks(path: Path, block_samples: int, sample_rate: int) -> Iterator[np.ndarray]:
    """Decode with an ffmpeg child process, yielding float32 mono blocks of ``block_samples``.

    ffmpeg writes stereo (any layout downmixed or upmixed to it), mixed to mono here by ``downmix``:
    ffmpeg's stereo output costs no more than its mono one.

    A thread reads the pipe ahead of the consumer (at most ``READ_AHEAD_BLOCKS`` blocks), so ffmpeg
    decodes the next blocks while this process computes features: decoding and analysis overlap.
    """
    command = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "info", "-i", f"file:{path.resolve()}",
        "-map", "0:a:0", "-vn", "-af", f"asetnsamples=n={FFMPEG_FRAME_SAMPLES}:p=0", "-ac", "2",
        "-ar", str(sample_rate), "-f", "f32le", "pipe:1",
    ]
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.DEVNULL)
        assert process.stdout is not None
        blocks: queue.Queue[bytes] = queue.Queue(maxsize=READ_AHEAD_BLOCKS)
        stop = threading.Event()
        chunk = block_samples * _STEREO_FRAME_BYTES
        reader = threading.Thread(target=_pump, args=(process.stdout, chunk, blocks, stop), daemon=True)
        reader.start()
        decoded, finished, cancelled = 0, False, 0
        try:
            while raw := blocks.get():
                usable = len(raw) - len(raw) % _STEREO_FRAME_BYTES
                decoded += usable // _STEREO_FRAME_BYTES
                mono, cancels = downmix(np.frombuffer(raw[:usable], dtype="<f4").reshape(-1, 2))
                cancelled += cancels
                yield mono
            finished = True
        finally:
            stop.set()
            if not finished:  # the consumer stopped early: don't wait for the rest of the decode
                process.kill()
            reader.join()
            process.stdout.close()
            returncode = process.wait()
        errors.seek(0)
        ffmpeg_log = errors.read()
    if cancelled:
        log.info("%r: its channels cancel in mono (phase-inverted?) in %d block(s); analysed their "
                 "difference there", str(path), cancelled)
    if returncode != 0 or decoded == 0:
        log.debug("ffmpeg on %r (exit %d): %s", str(path), returncode,
                  ffmpeg_log.decode("utf-8", "replace")[-2000:])
    if returncode != 0:
        raise AudioError(path, _ffmpeg_reason(ffmpeg_log, path))
    if decoded == 0:
        raise AudioError(path, _NO_SAMPLES)
    declared = _declared_seconds(ffmpeg_log)
    if declared and decoded / sample_rate < MIN_DECODED_SHARE * declared:
        raise AudioError(path, _short_reason(ffmpeg_log, decoded / sample_rate, declared))


# libsndfile's messages → the reason a user reads.
_SNDFILE_REASONS = (
    ("not recognised", _NOT_AUDIO),
    ("unknown format", _NOT_AUDIO),
    ("not a regular file", _NOT_AUDIO),  # what it says of a text file named .mp3
    ("malformed", _CORRUPT),
)


def _soundfile_reason(error: Exception) -> str:
    text = str(error)
    return next((reason for needle, reason in _SNDFILE_REASONS if needle in text), _CORRUPT)


def _soundfile_blocks(path: Path, block_samples: int, sample_rate: int) -> Iterator[np.ndarray]:
    """Decode with libsndfile (without ffmpeg, or when ffmpeg rejects the file), resampling as a stream."""
    import soundfile
    import soxr

    try:
        info = soundfile.info(str(path))
        resampler = soxr.ResampleStream(info.samplerate, sample_rate, 1, dtype="float32")
        decoded = 0
        source_block = max(1, int(block_samples * info.samplerate / sample_rate))
        blocks = soundfile.blocks(str(path), blocksize=source_block, dtype="float32", always_2d=True)
        for block in blocks:
            mono, _ = downmix(block)
            out = resampler.resample_chunk(mono, last=False)
            decoded += len(out)
            if len(out):
                yield out
        tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        decoded += len(tail)
        if len(tail):
            yield tail
    except (RuntimeError, soundfile.LibsndfileError) as exc:
        log.debug("libsndfile on %r: %s", str(path), exc)
        raise AudioError(path, _soundfile_reason(exc)) from exc
    if decoded == 0:
        raise AudioError(path, _NO_SAMPLES)


def _libsndfile_may_help(path: Path) -> bool:
    """Whether to try libsndfile after ffmpeg failed: it opens the file, and it is not MP3.

    libsndfile decodes MP3 through mpg123, which writes notes to the terminal and reads nothing
    ffmpeg cannot.
    """
    import soundfile

    with path.open("rb") as file:
        head = file.read(4)
    if path.suffix.lower() == ".mp3" or head[:3] == b"ID3":
        return False
    try:
        return soundfile.info(str(path)).format != "MP3"
    except (RuntimeError, soundfile.LibsndfileError):
        return False


def _decoded_blocks(path: Path, block_samples: int, sample_rate: int) -> Iterator[np.ndarray]:
    """ffmpeg's blocks, or libsndfile's when ffmpeg is missing or fails before any sound."""
    if not _ffmpeg_available():
        yield from _soundfile_blocks(path, block_samples, sample_rate)
        return
    produced = False
    try:
        for block in _ffmpeg_blocks(path, block_samples, sample_rate):
            produced = True
            yield block
    except AudioError as failure:
        if produced or not _libsndfile_may_help(path):
            raise
        log.info("ffmpeg cannot decode %r (%s); decoding it with libsndfile", str(path), failure.reason)
        try:
            yield from _soundfile_blocks(path, block_samples, sample_rate)
        except AudioError as second:
            raise failure from second  # ffmpeg's reason: libsndfile found no sound either


# The longest Ogg page: a 27-byte header, 255 lacing values, 255 segments of 255 bytes.
_OGG_MAX_PAGE = 27 + 255 + 255 * 255


def _ogg_cut_off(path: Path) -> bool:
    """Whether an Ogg file ends inside a page: a whole file ends with a whole page."""
    with path.open("rb") as file:
        if file.read(4) != b"OggS":
            return False
        size = file.seek(0, os.SEEK_END)
        file.seek(max(0, size - _OGG_MAX_PAGE))
        tail = file.read()
    start = tail.rfind(b"OggS")
    while start >= 0:
        header = tail[start : start + 27]
        if len(header) < 27:
            return True
        if header[4] == 0:  # stream structure version 0: a real page, not "OggS" inside data
            lacing = tail[start + 27 : start + 27 + header[26]]
            return len(lacing) < header[26] or start + 27 + len(lacing) + sum(lacing) > len(tail)
        start = tail.rfind(b"OggS", 0, start)
    return False


def _wav_declared_seconds(path: Path) -> float | None:
    """The duration a RIFF/WAVE header declares (its data chunk size), or None if not a sized WAV."""
    with path.open("rb") as file:
        head = file.read(1 << 16)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    position, rate, block_align = 12, 0, 0
    while position + 8 <= len(head):
        chunk = head[position : position + 4]
        size = int.from_bytes(head[position + 4 : position + 8], "little")
        if chunk == b"fmt " and size >= 16:
            rate = int.from_bytes(head[position + 12 : position + 16], "little")
            block_align = int.from_bytes(head[position + 20 : position + 22], "little")
        elif chunk == b"data":
            unknown = size in (0, 0xFFFFFFFF)  # written by a recorder that never went back to fill it
            return None if unknown or not rate or not block_align else size / block_align / rate
        position += 8 + size + (size & 1)
    return None


def _check_complete(path: Path, decoded_s: float) -> None:
    """Raise ``AudioError`` if the file's own header says more sound was there than was decoded."""
    declared = _wav_declared_seconds(path)
    if declared and decoded_s < MIN_DECODED_SHARE * declared:
        raise AudioError(path, f"truncated: decoded {decoded_s:.1f} s of a declared {declared:.1f} s")
    if _ogg_cut_off(path):
        raise AudioError(path, f"truncated: the file is cut off after {decoded_s:.1f} s")


def _ffmpeg_available() -> bool:
    return shutil.which("ffmpeg") is not None


# Longest decoder identity stored in the index (tracks.decoder).
DECODER_IDENTITY_CHARS = 64


@lru_cache(maxsize=1)
def decoder_identity() -> str:
    """The decoders this process would use and their versions, e.g. ``ffmpeg 5.1.6, libsndfile 1.2.2``.

    Stored with every analysis attempt: a file that failed is tried again once this changes (a newer
    ffmpeg may read it). Cached per process: ``ffmpeg -version`` costs a few milliseconds.
    """
    import soundfile

    names = []
    if _ffmpeg_available():
        try:
            banner = subprocess.run(["ffmpeg", "-version"], capture_output=True, timeout=30,
                                    stdin=subprocess.DEVNULL).stdout.decode("utf-8", "replace")
            words = banner.split()
            names.append(f"ffmpeg {words[2]}" if words[:2] == ["ffmpeg", "version"] else "ffmpeg ?")
        except (OSError, subprocess.SubprocessError):
            names.append("ffmpeg ?")
    names.append(f"libsndfile {soundfile.__libsndfile_version__}")
    return ", ".join(names)[:DECODER_IDENTITY_CHARS]


# Shown every decoded block with its sample rate: what rides along one decode (e.g. audible boundaries).
WindowObserver = Callable[[np.ndarray, int], None]


def decode_windows(
    path: str | os.PathLike[str], block_windows: int = BLOCK_WINDOWS, *, sample_rate: int = SAMPLE_RATE,
    observe: WindowObserver | None = None,
) -> Iterator[np.ndarray]:
    """Yield arrays of shape (k, window) of consecutive ``WINDOW_SECONDS`` windows from t = 0.

    ``window`` is ``WINDOW_SECONDS × sample_rate`` samples (``WINDOW_SAMPLES`` at the default rate).
    A trailing partial window is zero-padded when at least ``MIN_TAIL_SHARE`` of it is sound.
    ``observe(block, sample_rate)`` sees every block before it is yielded.
    Raises ``AudioError`` for anything that is not decodable audio (possibly after some windows).
    """
    for block in _windows(Path(path), block_windows, sample_rate):
        if observe is not None:
            observe(block, sample_rate)
        yield block


def _windows(path: Path, block_windows: int, sample_rate: int) -> Iterator[np.ndarray]:
    _check_readable(path)
    window = round(WINDOW_SECONDS * sample_rate)
    block_samples = block_windows * window
    pending = np.zeros(0, dtype=np.float32)
    decoded = 0
    for block in _decoded_blocks(path, block_samples, sample_rate):
        decoded += len(block)
        pending = np.concatenate([pending, block]) if len(pending) else block
        whole = len(pending) // window
        if whole >= block_windows:
            yield pending[: whole * window].reshape(whole, window)
            pending = pending[whole * window :].copy()
    _check_complete(path, decoded / sample_rate)
    whole = len(pending) // window
    tail = pending[whole * window :]
    if len(tail) >= MIN_TAIL_SHARE * window:
        padded = np.zeros(window, dtype=np.float32)
        padded[: len(tail)] = tail
        pending = np.concatenate([pending[: whole * window], padded])
        whole += 1
    if whole:
        yield pending[: whole * window].reshape(whole, window)


# The mel matrix is banded: filters are split into groups, each multiplied only with the FFT bins it
# covers. Same result as the dense product, about six times fewer multiplications.
MEL_GROUPS = 8


def compute_mel_basis() -> np.ndarray:
    """The Slaney mel filter bank (librosa's), (N_MELS, 1 + N_FFT // 2) float32.

    Shipped with the weights as ``mel_basis.npy``: importing librosa costs seconds and 130 MB in every
    scan worker, for one constant matrix.
    """
    import librosa

    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, dtype=np.float32)


@lru_cache(maxsize=1)
def _mel_bands():
    import torch

    from queueemo.assets import MEL_BASIS_FILE, asset_path

    basis = np.load(asset_path(MEL_BASIS_FILE)).astype(np.float32)
    if basis.shape != (N_MELS, 1 + N_FFT // 2):
        raise ModelError(f"{MEL_BASIS_FILE} has shape {basis.shape}, not ({N_MELS}, {1 + N_FFT // 2})")
    bands = []
    for rows in np.array_split(np.arange(N_MELS), MEL_GROUPS):
        used = np.flatnonzero(basis[rows].any(axis=0))
        lo, hi = (used[0], used[-1] + 1) if len(used) else (0, 1)
        bands.append((lo, hi, torch.from_numpy(basis[rows, lo:hi].copy())))
    return bands, torch.hann_window(N_FFT)


def log_mel(windows: np.ndarray) -> np.ndarray:
    """Log-mel spectrograms of 0.5 s windows: (k, 22050) → (k, N_FRAMES, N_MELS) float32.

    Mel power spectrogram (centred STFT, reflect padding, Hann window, Slaney mel filters), then
    ``log1p``. Every window is transformed on its own, so results do not depend on batching.
    """
    import torch

    bands, window = _mel_bands()
    with torch.inference_mode():
        signal = torch.from_numpy(np.array(windows, dtype=np.float32, copy=True))
        spectrum = torch.stft(
            signal, n_fft=N_FFT, hop_length=HOP_LENGTH, window=window, center=True,
            pad_mode="reflect", return_complex=True,
        )
        power = spectrum.abs().square_()  # (k, 1025, 44)
        mel = torch.cat([part @ power[:, lo:hi] for lo, hi, part in bands], dim=1)  # (k, 128, 44)
        return torch.log1p_(mel).transpose(1, 2).contiguous().numpy()


def iter_log_mel(path: str | os.PathLike[str], observe: WindowObserver | None = None) -> Iterator[np.ndarray]:
    """Stream a file's log-mel windows in blocks of shape (k, N_FRAMES, N_MELS)."""
    for windows in decode_windows(path, observe=observe):
        yield log_mel(windows)


def is_audio_path(path: str | os.PathLike[str]) -> bool:
    """Whether a file name has an audio extension (probing happens when decoding)."""
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS
