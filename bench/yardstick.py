"""An emotion yardstick independent of queueemo: classic descriptors → arousal and valence, by regression.

    python bench/yardstick.py [--data ../shared/data] [--cache /tmp/qe-yardstick.json]

It shares no code, weights or features with queueemo's model (no log-mel, no network): each 10-s
excerpt is described by 22 classic descriptors (librosa): tempo, beat strength, onset rate, major/minor
key correlation (mode) and key clarity, RMS level and dynamics, spectral
centroid, spread, roll-off, flatness and contrast (7 bands), zero-crossing rate. Arousal and valence
are regressed separately on human labels:

- 4q (real recordings, ~30-s excerpts, song-level Russell quadrant): the quadrant's signs, ±0.5;
- vgmidi (piano renders of game music, per-measure arousal/valence from ~30 raters): the mean over
  each 10-s excerpt.

(emomusic's continuous A/V has no audio, so no descriptor can be computed for it.) Every clip is cut
into 10-s excerpts, the length the transitions bench judges, and each excerpt is a sample. The model
is chosen only by its own cross-validated agreement with the labels: 5 folds grouped by 4q artist
and vgmidi piece; printed are the sign accuracy of arousal and valence on 4q (and both = quadrant),
at excerpt level and per clip (mean of its excerpts), and Pearson r on vgmidi.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

EXCERPT_S = 10.0
SAMPLE_RATE = 22_050
VGMIDI_MAX_S = 30.0
MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
QUADRANT_SIGNS = {"Q1": (1, 1), "Q2": (1, -1), "Q3": (-1, -1), "Q4": (-1, 1)}
DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def descriptors(y: np.ndarray, sr: int) -> dict[str, float]:
    """Classic descriptors of one excerpt (mono float audio at ``sr``)."""
    import librosa

    if len(y) < sr:
        y = np.pad(y, (0, sr - len(y)))
    stft = np.abs(librosa.stft(y))
    rms = librosa.feature.rms(S=stft)[0]
    rms_db = 20 * np.log10(np.maximum(rms, 1e-6))
    centroid = np.log2(np.maximum(librosa.feature.spectral_centroid(S=stft, sr=sr)[0], 20.0))
    onset_env = librosa.onset.onset_strength(S=librosa.amplitude_to_db(stft), sr=sr)
    onsets = librosa.onset.onset_detect(onset_envelope=onset_env, sr=sr)
    tempo, beats = librosa.beat.beat_track(onset_envelope=onset_env, sr=sr)
    beat_strength = (float(onset_env[beats].mean() / max(onset_env.mean(), 1e-9))
                     if len(beats) else 0.0)
    chroma = librosa.feature.chroma_stft(S=stft**2, sr=sr).mean(axis=1)
    major, minor = ([np.corrcoef(chroma, np.roll(p, k))[0, 1] for k in range(12)] for p in (MAJOR, MINOR))
    contrast = librosa.feature.spectral_contrast(S=stft, sr=sr).mean(axis=1)
    out = {
        "tempo": float(np.atleast_1d(tempo)[0]),
        "beat_strength": beat_strength,
        "onset_rate": len(onsets) / (len(y) / sr),
        "onset_strength": float(onset_env.mean()),
        "mode": float(np.nanmax(major) - np.nanmax(minor)),
        "key_clarity": float(np.nanmax(major + minor)),
        "rms_db": float(rms_db.mean()),
        "rms_std_db": float(rms_db.std()),
        "low_energy": float((rms < rms.mean()).mean()),
        "centroid": float(np.median(centroid)),
        "centroid_std": float(centroid.std()),
        "bandwidth": float(np.log2(np.maximum(np.median(
            librosa.feature.spectral_bandwidth(S=stft, sr=sr)[0]), 20.0))),
        "rolloff": float(np.log2(np.maximum(np.median(
            librosa.feature.spectral_rolloff(S=stft, sr=sr)[0]), 20.0))),
        "flatness": float(np.log10(np.maximum(np.median(librosa.feature.spectral_flatness(S=stft)[0]),
                                              1e-9))),
        "zcr": float(librosa.feature.zero_crossing_rate(y)[0].mean()),
    }
    out.update({f"contrast{i}": float(c) for i, c in enumerate(contrast)})
    return {k: (v if np.isfinite(v) else 0.0) for k, v in out.items()}


FEATURES = ("tempo", "beat_strength", "onset_rate", "onset_strength", "mode", "key_clarity",
            "rms_db", "rms_std_db", "low_energy", "centroid", "centroid_std",
            "bandwidth", "rolloff", "flatness", "zcr", *(f"contrast{i}" for i in range(7)))


def describe_region(path: Path, start: float, seconds: float) -> dict[str, float]:
    """Descriptors of ``seconds`` of ``path`` from ``start`` (ffmpeg seeks; librosa resamples)."""
    import librosa

    raw = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-ss", f"{max(start, 0.0):.3f}", "-t", f"{seconds:.3f}",
         "-i", str(path), "-ac", "2", "-ar", "44100", "-f", "f32le", "-"],
        capture_output=True, check=True).stdout
    y = librosa.resample(heard_mono(np.frombuffer(raw, dtype="<f4").reshape(-1, 2)), orig_sr=44_100,
                         target_sr=SAMPLE_RATE)
    return descriptors(y, SAMPLE_RATE)


def heard_mono(stereo: np.ndarray) -> np.ndarray:
    """ffmpeg's mono mix, (L + R)/√2, unless the channels cancel in it (a phase-inverted pair, which a
    listener hears at full level in stereo): then the left channel alone."""
    mono = (stereo[:, 0] + stereo[:, 1]) / np.float32(np.sqrt(2))
    if np.mean(mono**2) < 0.01 * np.mean(stereo[:, 0] ** 2):
        return np.ascontiguousarray(stereo[:, 0])
    return mono


# --- the labelled excerpts ------------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    """One labelled recording, cut into excerpts at ``starts``; labels per excerpt (NaN: unknown)."""

    source: str  # "4q" or "vgmidi"
    group: str  # artist (4q) or piece (vgmidi): never split across folds
    path: str
    starts: tuple[float, ...]
    arousal: tuple[float, ...]
    valence: tuple[float, ...]


def labelled_clips(data: Path) -> list[Clip]:
    """4q's and vgmidi's clips with their human labels."""
    clips = []
    with open(data / "4q" / "metadata.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            path = data / "4q" / "audio" / row["Quadrant"] / f"{row['Song']}.opus"
            if path.exists():
                a, v = (0.5 * s for s in QUADRANT_SIGNS[row["Quadrant"]])
                clips.append(Clip("4q", "4q:" + row["Artist"].casefold(), str(path), (0.0, 10.0, 20.0),
                                  (a,) * 3, (v,) * 3))
    measures: dict[str, list[tuple[float, float, float, float]]] = {}
    with open(data / "vgmidi" / "dynamic.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            measures.setdefault(row["piece"], []).append(
                (float(row["start_s"]), float(row["end_s"]), float(row["arousal"]), float(row["valence"])))
    for piece, rows in sorted(measures.items()):
        path = data / "vgmidi" / "audio" / f"{piece}.opus"
        end = min(max(r[1] for r in rows), VGMIDI_MAX_S)
        starts = tuple(float(s) for s in np.arange(0.0, end - EXCERPT_S + 1e-6, EXCERPT_S))
        if not path.exists() or not starts:
            continue
        labels = []
        for s in starts:
            inside = [r for r in rows if r[0] < s + EXCERPT_S and r[1] > s]
            labels.append((np.mean([r[2] for r in inside]), np.mean([r[3] for r in inside])))
        clips.append(Clip("vgmidi", "vgmidi:" + piece, str(path), starts,
                          tuple(float(a) for a, _ in labels), tuple(float(v) for _, v in labels)))
    return clips


def _describe_clip(clip: Clip) -> list[dict[str, float]]:
    import librosa

    y, sr = librosa.load(clip.path, sr=SAMPLE_RATE, mono=True, duration=max(clip.starts) + EXCERPT_S)
    step = int(EXCERPT_S * sr)
    return [descriptors(y[int(s * sr): int(s * sr) + step], sr) for s in clip.starts]


def describe_clips(clips: list[Clip], cache: Path, jobs: int) -> dict[str, list[dict[str, float]]]:
    """Descriptors of every clip's excerpts, cached in ``cache`` (JSON, by path)."""
    done: dict[str, list[dict[str, float]]] = json.loads(cache.read_text()) if cache.exists() else {}
    todo = [c for c in clips if c.path not in done or set(done[c.path][0]) != set(FEATURES)]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for number, (clip, rows) in enumerate(zip(todo, pool.map(_describe_clip, todo, chunksize=4),
                                                  strict=True)):
            done[clip.path] = rows
            if number % 20 == 19 or number == len(todo) - 1:
                cache.write_text(json.dumps(done))
    return done


# --- the regression and its cross-validation ------------------------------------------------------


@dataclass
class Yardstick:
    """Fitted arousal and valence regressors over ``FEATURES``."""

    arousal: object
    valence: object

    def predict(self, rows: list[dict[str, float]]) -> np.ndarray:
        """(n, 2) arousal, valence of descriptor rows."""
        x = np.array([[r[f] for f in FEATURES] for r in rows])
        return np.column_stack([self.arousal.predict(x), self.valence.predict(x)])


def _model(kind: str):
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVR

    if kind == "ridge":
        return make_pipeline(StandardScaler(), Ridge(alpha=10.0))
    if kind == "svr":
        return make_pipeline(StandardScaler(), SVR(C=1.0, epsilon=0.1))
    return HistGradientBoostingRegressor(max_iter=200, learning_rate=0.05, max_leaf_nodes=15,
                                         random_state=0)


MODELS = ("ridge", "svr", "boosting")


def _samples(clips: list[Clip], described: dict[str, list[dict[str, float]]]):
    x, y, groups, sources, clip_of = [], [], [], [], []
    for number, clip in enumerate(clips):
        for row, a, v in zip(described[clip.path], clip.arousal, clip.valence, strict=True):
            x.append([row[f] for f in FEATURES])
            y.append((a, v))
            groups.append(clip.group)
            sources.append(clip.source)
            clip_of.append(number)
    return np.array(x), np.array(y), np.array(groups), np.array(sources), np.array(clip_of)


def cross_validate(kind: str, clips: list[Clip], described: dict[str, list[dict[str, float]]],
                   ) -> dict[str, float]:
    """5-fold grouped CV of one model kind: 4q sign accuracies (excerpt and clip) and vgmidi r."""
    from sklearn.model_selection import GroupKFold

    x, y, groups, sources, clip_of = _samples(clips, described)
    pred = np.zeros_like(y)
    for train, test in GroupKFold(n_splits=5).split(x, y, groups):
        for axis in (0, 1):
            pred[test, axis] = _model(kind).fit(x[train], y[train, axis]).predict(x[test])
    q = sources == "4q"
    hit = np.sign(pred[q]) == np.sign(y[q])
    clips_4q = np.unique(clip_of[q])
    per_clip = np.array([pred[clip_of == c].mean(axis=0) for c in clips_4q])
    truth = np.array([y[clip_of == c][0] for c in clips_4q])
    clip_hit = np.sign(per_clip) == np.sign(truth)
    vg = sources == "vgmidi"
    return {
        "4q arousal": float(hit[:, 0].mean()), "4q valence": float(hit[:, 1].mean()),
        "4q quadrant": float(hit.all(axis=1).mean()),
        "4q arousal/clip": float(clip_hit[:, 0].mean()), "4q valence/clip": float(clip_hit[:, 1].mean()),
        "4q quadrant/clip": float(clip_hit.all(axis=1).mean()),
        "vgmidi r arousal": float(np.corrcoef(pred[vg, 0], y[vg, 0])[0, 1]),
        "vgmidi r valence": float(np.corrcoef(pred[vg, 1], y[vg, 1])[0, 1]),
    }


def _score(figures: dict[str, float]) -> float:
    """One number to choose a model by: mean of 4q's arousal and valence sign accuracy and vgmidi's r."""
    return float(np.mean([figures["4q arousal"], figures["4q valence"],
                          figures["vgmidi r arousal"], figures["vgmidi r valence"]]))


def build(data: Path, cache: Path, jobs: int = 2) -> tuple[Yardstick, str, dict[str, dict[str, float]]]:
    """Describe the labelled data, cross-validate each model kind, fit the best on everything."""
    from threadpoolctl import threadpool_limits

    clips = labelled_clips(data)
    described = describe_clips(clips, cache, jobs)
    with threadpool_limits(1):  # OpenMP threads spin badly on a shared machine; the data is small
        figures = {kind: cross_validate(kind, clips, described) for kind in MODELS}
        best = max(MODELS, key=lambda k: _score(figures[k]))
        x, y, *_ = _samples(clips, described)
        fitted = Yardstick(_model(best).fit(x, y[:, 0]), _model(best).fit(x, y[:, 1]))
    return fitted, best, figures


def report(best: str, figures: dict[str, dict[str, float]]) -> list[str]:
    """Lines describing the cross-validated figures of every kind (the chosen one marked)."""
    lines = []
    for kind, values in figures.items():
        cells = "  ".join(f"{k} {v:.2f}" for k, v in values.items())
        lines.append(f"  {'*' if kind == best else ' '} {kind:<9}{cells}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/qe-yardstick.json"))
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args()
    _, best, figures = build(args.data.resolve(), args.cache, args.jobs)
    print("emotion yardstick, 5-fold CV grouped by artist/piece (4q: sign accuracy, chance 0.5 per axis, "
          "0.25 quadrant; vgmidi: Pearson r); * = chosen by CV:")
    print("\n".join(report(best, figures)))


if __name__ == "__main__":
    main()
