"""How seamless are queueemo's transitions? Judged by measures that share no code with queueemo.

    python bench/transitions.py [--work /tmp/qe-trans] [--runs 5] [--weights 0,0.1,0.2,0.4]

1. A real library (bench/make_library.py: Debian game-music packages, mixed formats, one artist and
   album per game) under WORK/music, scanned by ``queueemo scan`` into WORK/index.sqlite3.
2. The scan stores each track's audible boundaries and boundary acoustics from its own decode.
3. A real MPD over WORK/music; for each continuity weight w (loudness w, brightness w × --brightness),
   RUNS runs of ``queueemo next -n 10`` from an empty queue; every transition A → B is judged.
4. Independent acoustic measure (no queueemo code): EBU R128 momentary loudness (ffmpeg ``ebur128``),
   spectral centroid (log2 Hz) and onset density (librosa) over the last 10 s of A's audible part and the
   first 10 s of B's (audible: momentary loudness within 20 LU of the track's integrated loudness); each
   jump is divided by that descriptor's spread (std) over the library, and the three are averaged.
5. Independent emotion yardstick: ridge regression on classic descriptors (tempo, major/minor chroma
   correlation, spectral shape, RMS, onset rate) fitted to the human quadrant labels of
   /work/shared/data/4q; also the shipped model's own jump (closing of A → opening of B, from the index).

Printed: each measure's mean jump, and "× smoother" = random-pair mean / mean (higher is smoother), for
queueemo, random pairs, and a greedy oracle that optimises the acoustic measure from the same seeds.
Descriptors are cached in WORK/descriptors.json (delete it after changing this file).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from _queuebench import child_env, wait_for

REGION_S = 10.0
AUDIBLE_LU = 20.0
DATA = Path("/work/shared/data")


# --- independent descriptors (ffmpeg + librosa only) ----------------------------------------------


def momentary_loudness(path: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """EBU R128 momentary loudness every 0.1 s (times, LUFS) and the integrated loudness."""
    log = subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-v", "verbose", "-i", str(path),
         "-filter_complex", "ebur128=framelog=verbose", "-f", "null", "-"],
        capture_output=True, text=True, errors="replace").stderr
    frames = re.findall(r"t:\s*([\d.]+)\s+TARGET:\S+ LUFS\s+M:\s*(-?[\d.]+)", log)
    integrated = re.findall(r"I:\s+(-?[\d.]+) LUFS\n", log)
    times = np.array([float(t) for t, _ in frames])
    values = np.array([float(m) for _, m in frames])
    return times, values, float(integrated[-1]) if integrated else float(values.max())


def power_mean(values: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(10 ** (values / 10)))) if len(values) else -70.0


def spectral(path: Path, start: float, seconds: float) -> dict[str, float]:
    """Centroid, onset density and the yardstick's descriptors of one region."""
    import librosa

    y, sr = librosa.load(str(path), sr=22_050, mono=True, offset=max(start, 0.0), duration=seconds)
    if len(y) < sr:
        y = np.pad(y, (0, sr - len(y)))
    centroid = librosa.feature.spectral_centroid(y=y, sr=sr)[0]
    onsets = librosa.onset.onset_detect(y=y, sr=sr, units="time")
    chroma = librosa.feature.chroma_stft(y=y, sr=sr).mean(axis=1)
    major = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
    minor = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
    best = [max(np.corrcoef(chroma, np.roll(profile, k))[0, 1] for k in range(12))
            for profile in (major, minor)]
    tempo = float(np.atleast_1d(librosa.beat.beat_track(y=y, sr=sr)[0])[0])
    rms = librosa.feature.rms(y=y)[0]
    return {
        "centroid": float(np.log2(np.maximum(np.median(centroid), 20.0))),
        "onsets": len(onsets) / (len(y) / sr),
        "mode": float(best[0] - best[1]),
        "tempo": tempo,
        "rolloff": float(np.log2(np.maximum(np.median(
            librosa.feature.spectral_rolloff(y=y, sr=sr)[0]), 20.0))),
        "flatness": float(np.median(librosa.feature.spectral_flatness(y=y)[0])),
        "contrast": float(librosa.feature.spectral_contrast(y=y, sr=sr).mean()),
        "rms_db": float(20 * np.log10(np.maximum(rms.mean(), 1e-6))),
        "zcr": float(librosa.feature.zero_crossing_rate(y)[0].mean()),
    }


YARDSTICK_FEATURES = ("centroid", "onsets", "mode", "tempo", "rolloff", "flatness", "contrast",
                      "rms_db", "zcr")


def describe_track(path: Path) -> dict[str, dict[str, float]]:
    """Descriptors of the audible start and end regions of a track."""
    times, values, integrated = momentary_loudness(path)
    audible = times[values >= max(integrated - AUDIBLE_LU, -70.0)]
    first = float(audible[0]) - 0.4 if len(audible) else 0.0  # momentary windows are 0.4 s long
    last = float(audible[-1]) if len(audible) else float(times[-1])
    regions = {"start": (max(first, 0.0), min(first + REGION_S, last)),
               "end": (max(last - REGION_S, first), last)}
    out = {}
    for name, (lo, hi) in regions.items():
        inside = (times >= lo + 0.4) & (times <= hi)
        out[name] = {"lufs": power_mean(values[inside]), **spectral(path, lo, max(hi - lo, 1.0))}
    return out


# --- the emotion yardstick: ridge on classic descriptors, fitted to 4q's human labels ---------------


def fit_yardstick(cache: Path, per_quadrant: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Ridge weights (features → arousal, valence), feature mean/std, and cross-validated quadrant-sign
    accuracy (share of held-out clips whose predicted arousal and valence signs are both right)."""
    rows = json.loads(cache.read_text()) if cache.exists() else {}
    for quadrant in ("Q1", "Q2", "Q3", "Q4"):
        for path in sorted((DATA / "4q" / "audio" / quadrant).glob("*.opus"))[:per_quadrant]:
            if str(path) not in rows:
                rows[str(path)] = {"q": quadrant, **spectral(path, 0.0, 30.0)}
        cache.write_text(json.dumps(rows))
    keys = sorted(rows)
    x = np.array([[rows[k][f] for f in YARDSTICK_FEATURES] for k in keys])
    signs = {"Q1": (1, 1), "Q2": (1, -1), "Q3": (-1, -1), "Q4": (-1, 1)}
    y = np.array([signs[rows[k]["q"]] for k in keys], dtype=float) * 0.5
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9

    def ridge(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        design = np.column_stack([(xs - mean) / std, np.ones(len(xs))])
        return np.linalg.solve(design.T @ design + 1.0 * np.eye(design.shape[1]), design.T @ ys)

    order = np.random.default_rng(0).permutation(len(x))
    hits = 0
    for fold in np.array_split(order, 5):
        train = np.setdiff1d(order, fold)
        w = ridge(x[train], y[train])
        pred = np.column_stack([(x[fold] - mean) / std, np.ones(len(fold))]) @ w
        hits += int((np.sign(pred) == np.sign(y[fold])).all(axis=1).sum())
    return ridge(x, y), mean, std, hits / len(x)


def yardstick(weights: np.ndarray, mean: np.ndarray, std: np.ndarray, region: dict) -> np.ndarray:
    features = np.array([region[f] for f in YARDSTICK_FEATURES])
    return np.append((features - mean) / std, 1.0) @ weights


# --- the library, its index and the boundary columns -----------------------------------------------


def ensure_index(work: Path) -> str:
    sys.path.insert(0, str(Path(__file__).parent))
    import make_library

    url = f"sqlite:///{work / 'index.sqlite3'}"
    make_library.build(work / "music", 20.0)
    env = child_env(QUEUEEMO_DB=url, XDG_CONFIG_HOME=str(work))
    subprocess.run([sys.executable, "-c", "from queueemo.cli import main; main()", "scan", "-j", "2",
                    str(work / "music")], check=True, env=env)
    return url


# --- runs against a real MPD ----------------------------------------------------------------------


def start_mpd(work: Path) -> tuple[subprocess.Popen, str]:
    import mpd

    sock = str(work / "mpd.sock")
    conf = work / "mpd.conf"
    conf.write_text(
        f'music_directory "{work / "music"}"\ndb_file "{work / "mpd.db"}"\n'
        f'state_file "{work / "mpd.state"}"\npid_file "{work / "mpd.pid"}"\n'
        f'bind_to_address "{sock}"\naudio_output {{\n  type "null"\n  name "null"\n}}\n',
        encoding="utf-8")
    process = subprocess.Popen(["mpd", "--no-daemon", str(conf)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)

    def connected():
        client = mpd.MPDClient()
        try:
            client.connect(sock)
        except OSError:
            return None
        return client

    client = wait_for(connected, what="mpd")
    client.update()
    wait_for(lambda: "updating_db" not in client.status(), timeout=300, what="mpd update")
    client.disconnect()
    return process, sock


def run_next(sock: str, url: str, work: Path, weight: float, runs: int, brightness: float,
             ) -> list[list[str]]:
    """``runs`` sequences of ``queueemo next -n 10`` from an empty queue."""
    import mpd

    env = child_env(MPD_HOST=sock, QUEUEEMO_DB=url, XDG_CONFIG_HOME=str(work),
                    QUEUEEMO_PICKER_LOUDNESS_WEIGHT=str(weight),
                    QUEUEEMO_PICKER_BRIGHTNESS_WEIGHT=str(weight * brightness))
    sequences = []
    for _ in range(runs):
        client = mpd.MPDClient()
        client.connect(sock)
        client.clear()
        result = subprocess.run([sys.executable, "-c", "from queueemo.cli import main; main()",
                                 "next", "-n", "10"], env=env, capture_output=True, text=True)
        if result.returncode:
            raise SystemExit(f"next failed: {result.stderr.strip()}")
        sequences.append([song["file"] for song in client.playlistinfo()])
        client.clear()
        client.disconnect()
    return sequences


# --- judging --------------------------------------------------------------------------------------


ACOUSTIC = ("lufs", "centroid", "onsets")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/qe-trans"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--weights", default="0,0.1,0.2,0.3,0.5,0.8",
                        help="loudness weights to try (the trade-off curve)")
    parser.add_argument("--brightness", type=float, default=1.0,
                        help="brightness weight as a share of the loudness weight")
    parser.add_argument("--per-quadrant", type=int, default=60,
                        help="4q clips per quadrant for the yardstick")
    args = parser.parse_args()
    work = args.work.resolve()
    if Path(__file__).resolve().parents[1] in work.parents:
        raise SystemExit("--work must be outside the repository (the audio stays out of it)")
    work.mkdir(parents=True, exist_ok=True)
    url = ensure_index(work)

    import sqlalchemy as sa

    from queueemo.library.db import STATUS_OK, Track, open_library

    music = work / "music"
    with open_library(url) as library, library.session() as session:
        index = {os.path.relpath(t.path, music): t for t in
                 session.scalars(sa.select(Track).where(Track.status == STATUS_OK))}
        shipped = {uri: (np.array([t.opening_arousal, t.opening_valence]),
                         np.array([t.closing_arousal, t.closing_valence]), t.artist)
                   for uri, t in index.items()}
    cache = work / "descriptors.json"
    described = json.loads(cache.read_text()) if cache.exists() else {}
    for uri in sorted(shipped):
        if uri not in described:
            described[uri] = describe_track(music / uri)
            cache.write_text(json.dumps(described))
    uris = sorted(shipped)
    print(f"library: {len(uris)} analysed tracks by {len({s[2] for s in shipped.values()})} artists "
          f"from {music}")

    weights_, mean, std, accuracy = fit_yardstick(work / "yardstick.json", args.per_quadrant)
    print(f"emotion yardstick: ridge on {len(YARDSTICK_FEATURES)} classic descriptors fitted to "
          f"{4 * args.per_quadrant} 4q clips; cross-validated quadrant accuracy {accuracy:.2f} "
          "(chance 0.25)")
    spread = {k: float(np.std([described[u][r][k] for u in uris for r in ("start", "end")]))
              for k in ACOUSTIC}
    yard = {u: {r: yardstick(weights_, mean, std, described[u][r]) for r in ("start", "end")}
            for u in uris}

    def acoustic(a: str, b: str) -> float:
        return float(np.mean([abs(described[b]["start"][k] - described[a]["end"][k]) / spread[k]
                              for k in ACOUSTIC]))

    def measures(a: str, b: str) -> dict[str, float]:
        return {
            "acoustic": acoustic(a, b),
            "loudness LU": abs(described[b]["start"]["lufs"] - described[a]["end"]["lufs"]),
            "brightness oct": abs(described[b]["start"]["centroid"] - described[a]["end"]["centroid"]),
            "onsets/s": abs(described[b]["start"]["onsets"] - described[a]["end"]["onsets"]),
            "emotion (yardstick)": float(np.linalg.norm(yard[b]["start"] - yard[a]["end"])),
            "emotion (shipped)": float(np.linalg.norm(shipped[b][0] - shipped[a][1])),
        }

    def mean_of(pairs: list[tuple[str, str]]) -> dict[str, float]:
        rows = [measures(a, b) for a, b in pairs]
        return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}

    random_pairs = mean_of([(a, b) for a in uris for b in uris if a != b])

    def oracle(seed: str, length: int) -> list[str]:
        sequence = [seed]
        while len(sequence) < length:
            rest = [u for u in uris if u not in sequence]
            sequence.append(min(rest, key=lambda u: acoustic(sequence[-1], u)))
        return sequence

    def line(name: str, result: dict[str, float]) -> str:
        cells = "  ".join(f"{k} {v:.3f} ({random_pairs[k] / max(v, 1e-9):.2f}×)" for k, v in result.items())
        return f"  {name:<22}{cells}"

    process, sock = start_mpd(work)
    try:
        print("mean jump per transition (× smoother than random pairs; higher is smoother):")
        print(line("random pairs", random_pairs))
        seeds: list[str] = []
        for weight in (float(w) for w in args.weights.split(",")):
            sequences = run_next(sock, url, work, weight, args.runs, args.brightness)
            pairs = [(s[i], s[i + 1]) for s in sequences for i in range(len(s) - 1)]
            print(line(f"queueemo w={weight:g}", mean_of(pairs)) + f"  [{len(pairs)} transitions]")
            seeds = seeds or [s[0] for s in sequences]
        oracle_pairs = [(s[i], s[i + 1]) for seed in seeds for s in [oracle(seed, 10)]
                        for i in range(9)]
        print(line("greedy acoustic oracle", mean_of(oracle_pairs)))
    finally:
        process.terminate()
        process.wait()


if __name__ == "__main__":
    main()
