"""Audible boundaries and boundary acoustics of a track, from the decoded windows as they stream.

Pure numpy, short real FFTs over each ``audio.WINDOW_SECONDS`` window, so the scan computes them from the same
decode as the emotion (no second pass). Per window, and per frame inside it:

- loudness: K-weighted mean power in LUFS (ITU-R BS.1770's K filter, designed for the stream's sample
  rate and applied as its magnitude response to the spectra of the window's frames, which by Parseval
  gives the mean power of the filtered window);
- brightness: per frame, the spectral centroid (Hz) of the Hann-windowed magnitude spectrum; a stretch
  gets the median over its frames (every moment counts alike: what the ear calls the stretch's
  brightness, not its loudest chords');
- onsets: per frame, the half-wave-rectified rise of the log power of every frequency bin, averaged
  (spectral flux, in dB, so a fade does not hide onsets; linear bins, so the broadband attack of a soft
  note counts as much as a drum's); an onset is a frame whose flux is a local maximum above the mean
  flux of the ``ONSET_CONTEXT_S`` around it by ``ONSET_RELATIVE`` of the stretch's flux range (at
  least ``ONSET_DELTA_DB``): a soft orchestral attack is an onset among soft music as a drum hit is
  among loud. A stretch gets its onsets per second (its onset density).

The track's own level is its gated loudness (BS.1770: windows above -70 LUFS, then above that mean
-10 LU). Against that level:

- sound starts at the first window no more than ``SOUND_BELOW_LU`` (30 LU) below it;
- the ending begins after the last window whose loudness, smoothed over ``SMOOTH_WINDOWS``, is within
  ``BODY_BELOW_LU`` (6 LU) of it — a fade-out or a final decay; a quieter stretch longer than
  ``MAX_ENDING_S`` is a quiet section, not an ending, and then the ending is only the trailing silence.

"Opening" is the first seconds of audible body from the sound start; the "tail" is the windows just
before the ending begins (a track without a fade: its last audible windows). The emotion of the tail
leaves the fade out (the models are trained to ignore gain, and a fade misleads them), but the ending's
loudness and brightness are measured over the last audible seconds, fade included: that is what the
listener hears just before the next track (on a real library this matches an independent EBU R128
measure of the audible end with r = 0.99, against 0.72 for the windows before the fade).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import ClassVar

import numpy as np

from queueemo.audio import WINDOW_SECONDS

ABSOLUTE_GATE_LUFS = -70.0  # BS.1770's absolute gate; also the floor reported for silence
RELATIVE_GATE_LU = 10.0
SOUND_BELOW_LU = 30.0
BODY_BELOW_LU = 6.0
SMOOTH_WINDOWS = 4  # 2 s
MAX_ENDING_S = 30.0
OPENING_WINDOWS = 20  # 10 s
TAIL_WINDOWS = 10  # 5 s: the forecaster's context
FRAME_SAMPLES = 2048  # spectra are taken over frames of this many samples (at 44.1 kHz) inside each window
# bin mean square floor (-90 dB): silence has no onsets, nor a codec's near-empty bins (on 4q's Opus
# clips a -110 dB floor drops the agreement from r = 0.86 to 0.72)
ONSET_FLOOR = 1e-9
# An onset's flux rises above the local mean by ONSET_RELATIVE of the stretch's flux range, and by at
# least ONSET_DELTA_DB (so that a steady tone's tiny fluctuations are not onsets); chosen on 4q's real
# recordings against librosa's detector (bench/boundary_agreement.py; see the README, "Picking").
ONSET_RELATIVE = 0.1
ONSET_DELTA_DB = 0.5
ONSET_CONTEXT_S = 0.1  # seconds either side over which that local mean is taken
_LUFS_OFFSET = -0.691  # BS.1770: L = -0.691 + 10 log10(mean square of the K-filtered signal)


def _biquad_power(b: tuple[float, float, float], a: tuple[float, float, float],
                  freqs: np.ndarray, sample_rate: int) -> np.ndarray:
    z = np.exp(-1j * 2 * np.pi * freqs / sample_rate)
    response = (b[0] + b[1] * z + b[2] * z**2) / (a[0] + a[1] * z + a[2] * z**2)
    return np.abs(response) ** 2


def k_filter_coefficients(sample_rate: int) -> list[tuple[tuple[float, ...], tuple[float, ...]]]:
    """The two K-weighting biquads (shelf, high-pass) as (b, a) for any sample rate (libebur128's design)."""
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = np.tan(np.pi * f0 / sample_rate)
    vh = 10 ** (gain_db / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf = ((vh + vb * k / q + k * k) / a0, 2 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0)
    shelf_a = (1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0)
    f0, q = 38.13547087602444, 0.5003270373238773
    k = np.tan(np.pi * f0 / sample_rate)
    a0 = 1 + k / q + k * k
    high_a = (1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0)
    return [(shelf, shelf_a), ((1.0, -2.0, 1.0), high_a)]


@lru_cache(maxsize=8)
def _loudness_weights(n: int, sample_rate: int) -> np.ndarray:
    """(bins,) float32 per rfft bin of an n-sample frame: Parseval's weight times the K filter's power
    response, so one product gives the K-weighted mean square of a frame."""
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    parseval = np.full(len(freqs), 2.0 / n**2)
    parseval[0] = 1.0 / n**2
    if n % 2 == 0:
        parseval[-1] = 1.0 / n**2
    k_power = np.ones(len(freqs))
    for b, a in k_filter_coefficients(sample_rate):
        k_power *= _biquad_power(b, a, freqs, sample_rate)
    return (parseval * k_power).astype(np.float32)


@lru_cache(maxsize=8)
def _centroid_weights(n: int, sample_rate: int) -> np.ndarray:
    """(bins - 2, 2) float32: the frequency and 1 per Hann-spectrum bin (rfft bins 1 … n/2 - 1), so one
    product gives a frame's magnitude-weighted frequency sum and its magnitude sum."""
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)[1:-1]
    return np.column_stack([freqs, np.ones(len(freqs))]).astype(np.float32)


def frame_length(sample_rate: int) -> int:
    """Samples per spectral frame: the power of two nearest below ``FRAME_SAMPLES``' 46 ms at this rate
    (the scan decodes at 16 kHz for the v2 model: 512-sample frames, 15 per window)."""
    return 2 ** int(np.floor(np.log2(FRAME_SAMPLES * sample_rate / 44_100 + 1e-9)))


@dataclass(frozen=True)
class WindowFeatures:
    """Per window of a block: K-weighted mean power; per frame: centroid (Hz) and bin levels (dB)."""

    weighted: np.ndarray  # (k,)
    centroid: np.ndarray  # (k, frames): magnitude-weighted spectral centroid, 0 for a silent frame
    bin_db: np.ndarray  # (k, frames, bins - 2) float32: log power of each Hann-spectrum bin


def window_features(windows: np.ndarray, sample_rate: int) -> WindowFeatures:
    """(k, n) windows → their loudness, and the brightness and onset features of their frames.

    Each window is cut into whole ``frame_length`` frames (the few samples left over are not used),
    whose rectangular-window spectra give the power exactly (Parseval): four times cheaper than one
    long FFT per window, at 21.5 Hz resolution (31 Hz at 16 kHz), plenty for the K filter. Centroids
    and onsets see the frames through a Hann window (a 3-tap convolution of the spectrum), whose low
    leakage keeps a tone's centroid on the tone and a steady tone's far bins steady from frame to frame.
    """
    from scipy import fft  # float32 FFTs ~8 times faster than numpy's here

    windows = np.asarray(windows, dtype=np.float32)
    k, n = windows.shape
    frame = min(frame_length(sample_rate), n)
    frames = windows[:, : (n // frame) * frame].reshape(k, n // frame, frame)
    spectrum = fft.rfft(frames, axis=2)
    power = spectrum.real**2 + spectrum.imag**2
    weighted = (power @ _loudness_weights(frame, sample_rate)).astype(np.float64).mean(axis=1)
    hann = spectrum[:, :, 1:-1] - (spectrum[:, :, :-2] + spectrum[:, :, 2:]) * np.float32(0.5)  # ×2
    hann_power = hann.real**2 + hann.imag**2
    moments = np.sqrt(hann_power) @ _centroid_weights(frame, sample_rate)  # (k, frames, 2)
    centroid = np.divide(moments[..., 0], moments[..., 1], out=np.zeros((k, n // frame), np.float32),
                         where=moments[..., 1] > 0)
    hann_power *= np.float32(2.0 / frame**2)  # mean square per bin (Hann's gain aside: a dB shift)
    bin_db = 10 * np.log10(np.maximum(hann_power, np.float32(ONSET_FLOOR)))
    return WindowFeatures(weighted, centroid, bin_db)


def frame_flux(bin_db: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    """(k, frames, bins) log bin power → (k, frames) spectral flux: the mean over bins of each frame's
    rise in dB since the frame before (falls count 0; ``previous``: the frame before the first)."""
    k, per_window, bins = bin_db.shape
    levels = bin_db.reshape(k * per_window, bins)
    before = np.concatenate([levels[:1] if previous is None else previous[None], levels[:-1]])
    return np.maximum(levels - before, 0).mean(axis=1).reshape(k, per_window)


def onset_density(flux: np.ndarray, window_seconds: float = WINDOW_SECONDS) -> float:
    """(windows, frames) spectral flux of a stretch → its onsets per second (see the module doc)."""
    k, per_window = flux.shape
    if not k:
        return 0.0
    series = flux.reshape(-1).astype(np.float64)
    reach = max(1, round(ONSET_CONTEXT_S * per_window / window_seconds))
    sums = np.concatenate([[0.0], np.cumsum(series)])
    index = np.arange(len(series))
    lo, hi = np.maximum(index - reach, 0), np.minimum(index + reach + 1, len(series))
    local = (sums[hi] - sums[lo]) / (hi - lo)  # mean flux within ``reach`` frames
    # the range leaves out the first frame: its rise is from before the stretch (at the opening, from the
    # silence before the sound starts), and would set the scale of every onset after it
    top = series[1:].max() if len(series) > 1 else series.max()
    rise = max(ONSET_DELTA_DB, ONSET_RELATIVE * float(top - series.min()))
    before = np.concatenate([[np.inf], series[:-1]])
    after = np.concatenate([series[1:], [-np.inf]])
    peaks = (series > before) & (series >= after) & (series >= local + rise)
    return float(peaks.sum() / (k * window_seconds))


def lufs(mean_power: np.ndarray | float) -> np.ndarray:
    """K-weighted mean power → LUFS, floored at the absolute gate."""
    power = np.maximum(np.asarray(mean_power, dtype=np.float64), 1e-30)
    return np.maximum(_LUFS_OFFSET + 10 * np.log10(power), ABSOLUTE_GATE_LUFS)


@dataclass(frozen=True)
class Boundaries:
    """Where a track's sound starts and its ending begins, and how its opening and ending sound."""

    sound_start_s: float
    ending_start_s: float
    opening_lufs: float
    ending_lufs: float
    opening_brightness: float  # spectral centroid, Hz
    ending_brightness: float
    opening_onsets: float  # onset density, onsets per second
    ending_onsets: float
    level_lufs: float  # the track's own (gated) level, the reference of the thresholds
    opening: slice  # window rows of the opening
    tail: slice  # window rows just before the ending begins
    heard_end: slice  # the last audible window rows, fade included: what the next track follows

    def resized(self, opening_windows: int, tail_windows: int) -> Boundaries:
        """The same boundaries with an opening and a tail of other lengths (the emotion summaries')."""
        first, ending = self.opening.start, self.tail.stop
        return replace(self, opening=slice(first, max(first + 1, min(first + opening_windows, ending))),
                       tail=slice(max(first, ending - tail_windows), ending))

    # The values stored in the index: each is a field of the same name.
    COLUMNS: ClassVar[tuple[str, ...]] = (
        "sound_start_s", "ending_start_s", "opening_lufs", "ending_lufs", "opening_brightness",
        "ending_brightness", "opening_onsets", "ending_onsets",
    )

    def columns(self) -> dict[str, float]:
        """The values stored in the index, by column name."""
        return {name: getattr(self, name) for name in self.COLUMNS}


class BoundaryAccumulator:
    """Collects per-window loudness and per-frame brightness and onsets block by block; ``result()``
    at the end.

    Memory: one float per window and two per frame (centroid, flux), whatever the track's length.
    """

    def __init__(self, opening_windows: int = OPENING_WINDOWS, tail_windows: int = TAIL_WINDOWS) -> None:
        self.opening_windows = opening_windows
        self.tail_windows = tail_windows
        self._weighted: list[np.ndarray] = []
        self._centroid: list[np.ndarray] = []
        self._flux: list[np.ndarray] = []
        self._last_frame: np.ndarray | None = None

    def add(self, windows: np.ndarray, sample_rate: int) -> None:
        """Take one decoded block of shape (k, WINDOW_SECONDS × sample_rate)."""
        if len(windows):
            features = window_features(windows, sample_rate)
            self._weighted.append(features.weighted)
            self._centroid.append(features.centroid)
            self._flux.append(frame_flux(features.bin_db, self._last_frame))
            self._last_frame = features.bin_db[-1, -1]

    def result(self) -> Boundaries:
        """The boundaries of everything added so far (a silent or empty track: the whole of it)."""
        if not self._weighted:
            return find_boundaries(np.zeros(0), np.zeros((0, 1)), np.zeros((0, 1)))
        return find_boundaries(np.concatenate(self._weighted), np.concatenate(self._centroid),
                               np.concatenate(self._flux), opening_windows=self.opening_windows,
                               tail_windows=self.tail_windows)


def gated_level(weighted: np.ndarray) -> float:
    """The track's own level (LUFS): BS.1770's two-stage gated mean over windows."""
    loud = lufs(weighted)
    above = weighted[loud > ABSOLUTE_GATE_LUFS]
    if not len(above):
        return ABSOLUTE_GATE_LUFS
    first = float(lufs(above.mean()))
    kept = above[lufs(above) > first - RELATIVE_GATE_LU]
    return float(lufs(kept.mean())) if len(kept) else first


def find_boundaries(weighted: np.ndarray, centroid: np.ndarray, flux: np.ndarray, *,
                    opening_windows: int = OPENING_WINDOWS, tail_windows: int = TAIL_WINDOWS,
                    ) -> Boundaries:
    """Boundaries from per-window K-weighted power and per-frame centroid and spectral flux, both
    (windows, frames) (see the module doc)."""
    n = len(weighted)
    loud = lufs(weighted)
    level = gated_level(weighted)
    audible = np.flatnonzero((loud > ABSOLUTE_GATE_LUFS) & (loud >= level - SOUND_BELOW_LU))
    if not len(audible):
        whole = slice(0, n)
        return Boundaries(0.0, n * WINDOW_SECONDS, ABSOLUTE_GATE_LUFS, ABSOLUTE_GATE_LUFS, 0.0, 0.0,
                          0.0, 0.0, ABSOLUTE_GATE_LUFS, whole, whole, whole)
    first, last = int(audible[0]), int(audible[-1]) + 1  # rows [first, last) hold the sound
    kernel = np.ones(SMOOTH_WINDOWS) / SMOOTH_WINDOWS
    smooth = lufs(np.convolve(weighted, kernel, mode="same"))
    body = np.flatnonzero(smooth[first:last] >= level - BODY_BELOW_LU)
    ending = first + int(body[-1]) + 1 if len(body) else last
    if (last - ending) * WINDOW_SECONDS > MAX_ENDING_S:
        ending = last  # a long quiet stretch is part of the music, not its ending
    ending = max(ending, first + 1)
    opening = slice(first, min(first + opening_windows, ending))
    tail = slice(max(first, ending - tail_windows), ending)
    heard_end = slice(max(first, last - opening_windows), last)
    return Boundaries(
        sound_start_s=first * WINDOW_SECONDS,
        ending_start_s=ending * WINDOW_SECONDS,
        opening_lufs=float(lufs(weighted[opening].mean())),
        ending_lufs=float(lufs(weighted[heard_end].mean())),
        opening_brightness=brightness_of(centroid[opening]),
        ending_brightness=brightness_of(centroid[heard_end]),
        opening_onsets=onset_density(flux[opening]),
        ending_onsets=onset_density(flux[heard_end]),
        level_lufs=level,
        opening=opening,
        tail=tail,
        heard_end=heard_end,
    )


def brightness_of(centroid: np.ndarray) -> float:
    """The typical brightness of a stretch: the median over its frames of their centroids (Hz).

    Each frame counts alike, so a few loud bass-heavy moments do not decide it; silent frames (no
    centroid) are left out.
    """
    sounding = centroid[centroid > 0]
    return float(np.median(sounding)) if len(sounding) else 0.0


def boundary_emotion(trajectory: np.ndarray, boundaries: Boundaries) -> dict[str, float]:
    """Opening and closing emotion measured inside the audible boundaries (not over silence or fades).

    ``trajectory`` is the (n, 2) arousal/valence per window of the same decode; opening = mean over the
    opening windows, closing = mean over the tail. Same keys as ``emotion.summary.summarise``.
    """
    trajectory = np.asarray(trajectory, dtype=np.float32)
    n = len(trajectory)

    def mean(rows: slice) -> np.ndarray:
        part = trajectory[min(rows.start, n - 1) : max(min(rows.stop, n), min(rows.start, n - 1) + 1)]
        return part.mean(axis=0)

    opening, closing, overall = mean(boundaries.opening), mean(boundaries.tail), trajectory.mean(axis=0)
    return {
        "opening_arousal": float(opening[0]), "opening_valence": float(opening[1]),
        "closing_arousal": float(closing[0]), "closing_valence": float(closing[1]),
        "mean_arousal": float(overall[0]), "mean_valence": float(overall[1]),
    }


def tail_rows(n_windows: int, ending_start_s: float | None, tail_windows: int = TAIL_WINDOWS) -> slice:
    """Rows of a stored trajectory just before its ending (its last rows when the ending is unknown)."""
    end = n_windows if ending_start_s is None else min(n_windows, round(ending_start_s / WINDOW_SECONDS))
    end = max(end, min(n_windows, 1))
    return slice(max(0, end - tail_windows), end)
