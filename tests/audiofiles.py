"""Small real audio files for tests: synthetic signals written by soundfile or ffmpeg."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile


def synth(seconds: float, *, freq: float = 440.0, sr: int = 44_100, loud: float = 0.3,
          pulse_hz: float = 0.0, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """A test signal: a tone, optionally pulsed (beats) and with noise; float32 mono."""
    t = np.arange(int(seconds * sr)) / sr
    signal = loud * np.sin(2 * np.pi * freq * t)
    if pulse_hz:
        signal *= 0.5 * (1 + np.sign(np.sin(2 * np.pi * pulse_hz * t)))
    if noise:
        signal += noise * np.random.default_rng(seed).standard_normal(len(t))
    return signal.astype(np.float32)


def write_audio(path: Path, signal: np.ndarray, sr: int = 44_100, channels: int = 1) -> Path:
    """Write ``signal`` in the format named by the suffix (wav/flac/ogg by soundfile, rest by ffmpeg)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.repeat(signal[:, None], channels, axis=1) if channels > 1 else signal
    suffix = path.suffix.lower()
    if suffix in {".wav", ".flac", ".ogg"}:
        soundfile.write(str(path), data, sr)
        return path
    wav = path.with_suffix(".src.wav")
    soundfile.write(str(wav), data, sr)
    codec = {".mp3": ["-c:a", "libmp3lame", "-b:a", "128k"], ".opus": ["-c:a", "libopus", "-b:a", "64k"],
             ".m4a": ["-c:a", "aac", "-b:a", "128k"]}[suffix]
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(wav), *codec, str(path)],
                   check=True)
    wav.unlink()
    return path


requires_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
