"""How seamless are queueemo's transitions? Judged by measures that share no code with queueemo.

    python bench/transitions.py                       # both libraries, the whole trade-off curve
    python bench/transitions.py --library second --runs 5 --weights 0,0.3:0.1:0.3

1. Two real, disjoint libraries (bench/make_library.py: Debian game-music packages, mixed formats,
   artist and album per game) under /tmp/qe-trans-LIBRARY/music, scanned by ``queueemo scan``
   (which stores the audible boundaries and boundary acoustics) into index.sqlite3 beside it.
2. A real MPD over that music; for each (loudness, brightness, onset) weight triple, RUNS runs of
   ``queueemo next -n 10`` from an empty queue with every rule on; every transition A → B is judged.
3. Independent acoustic measure (no queueemo code): EBU R128 momentary loudness (ffmpeg ``ebur128``),
   spectral centroid (log2 Hz) and onset density (librosa) over the last 10 s of A's audible part and the
   first 10 s of B's (audible: momentary loudness within 20 LU of the track's integrated loudness); each
   jump is divided by that descriptor's spread (std) over the library, and the three are averaged.
4. Independent emotion yardstick (bench/yardstick.py): arousal and valence regressed separately on
   classic descriptors of the same regions, fitted to human labels (4q, vgmidi) and chosen only by its
   own cross-validated agreement with them (printed first); also the shipped model's own jump
   (closing of A → opening of B, from the index), and how far the two emotions agree on the library.

Printed per library: each measure's mean jump and "×" = random pairs' mean / that mean (higher is
smoother) with its bootstrap spread over runs, for queueemo at each weight, and for greedy oracles
(acoustic, yardstick emotion, both) that follow the same spacing rules from every track, and a
simulated picker (shipped emotion + 0.3 × loudness and brightness jumps) with and without an onset
term; then the weights chosen by one rule over both libraries (``score``), and the rows as markdown.
Last, the emotion ceiling on a larger library: both libraries judged as one (~120 tracks, spreads and
random pairs over the union), the yardstick-emotion and acoustic + yardstick oracles with rules on.
Rerun everything after new weights with the same command (the scan re-analyses what changed).
Descriptors are cached in each WORK/descriptors.json, the yardstick's in
/tmp/qe-yardstick.json (both refreshed when the descriptor set changes).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import make_library
import numpy as np
import yardstick
from _queuebench import REPO, child_env, wait_for

REGION_S = 10.0
AUDIBLE_LU = 20.0


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


def describe_track(path: Path) -> dict[str, dict[str, float]]:
    """Loudness and the yardstick's descriptors of the audible start and end regions of a track."""
    times, values, integrated = momentary_loudness(path)
    audible = times[values >= max(integrated - AUDIBLE_LU, -70.0)]
    first = float(audible[0]) - 0.4 if len(audible) else 0.0  # momentary windows are 0.4 s long
    last = float(audible[-1]) if len(audible) else float(times[-1])
    regions = {"start": (max(first, 0.0), min(first + REGION_S, last)),
               "end": (max(last - REGION_S, first), last)}
    out = {}
    for name, (lo, hi) in regions.items():
        inside = (times >= lo + 0.4) & (times <= hi)
        out[name] = {"lufs": power_mean(values[inside]),
                     **yardstick.describe_region(path, lo, max(hi - lo, 1.0))}
    return out


# --- the library and its index --------------------------------------------------------------------


def ensure_index(work: Path, library: str) -> str:
    """Build the library under WORK/music and scan it (unchanged files are not analysed again)."""
    url = f"sqlite:///{work / 'index.sqlite3'}"
    make_library.build(work / "music", 20.0, library)
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


Weights = tuple[float, float, float]  # loudness, brightness, onsets


def run_next(sock: str, url: str, work: Path, weights: Weights, runs: int) -> list[list[str]]:
    """``runs`` sequences of ``queueemo next -n 10`` from an empty queue, all rules on, with the
    given (loudness, brightness, onset) weights."""
    import mpd

    env = child_env(MPD_HOST=sock, QUEUEEMO_DB=url, XDG_CONFIG_HOME=str(work),
                    QUEUEEMO_PICKER_LOUDNESS_WEIGHT=str(weights[0]),
                    QUEUEEMO_PICKER_BRIGHTNESS_WEIGHT=str(weights[1]),
                    QUEUEEMO_PICKER_ONSET_WEIGHT=str(weights[2]))
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


ACOUSTIC = ("lufs", "centroid", "onset_rate")
SPACING = 3  # the picker's default artist and album spacing, for the oracles
DEFAULT_WEIGHTS = "0:0:0,0.3:0.3:0,0.3:0.3:0.15,0.3:0.3:0.3,0.3:0.3:0.5,0.2:0.2:0.4,0.5:0.5:0.5"
MIN_CHOICE_SHARE = 0.3  # the picker's default: spacing relaxes while it leaves less of the pool
BOOTSTRAP = 1000
TIE = 0.05  # score differences below this are within the runs' spread (± ~0.1 on each ratio)


@dataclass
class Judge:
    """One library's tracks, their independent descriptors and both emotions; judges transitions."""

    uris: list[str]
    artists: dict[str, str]
    albums: dict[str, str]
    described: dict[str, dict[str, dict[str, float]]]
    yard: dict[str, dict[str, np.ndarray]]  # uri → {"start", "end"} → (arousal, valence)
    shipped: dict[str, dict[str, np.ndarray]]  # uri → {"start", "end"}: opening, closing
    # uri → {"start", "end"} → queueemo's own stored (LUFS, log2 Hz, log2 onsets/s) at the opening, ending
    own: dict[str, dict[str, np.ndarray]]
    spread: dict[str, float] = field(init=False)

    def __post_init__(self) -> None:
        self.spread = {k: float(np.std([self.described[u][r][k] for u in self.uris
                                        for r in ("start", "end")])) for k in ACOUSTIC}

    def jump(self, a: str, b: str, key: str) -> float:
        return abs(self.described[b]["start"][key] - self.described[a]["end"][key])

    def acoustic(self, a: str, b: str) -> float:
        return float(np.mean([self.jump(a, b, k) / self.spread[k] for k in ACOUSTIC]))

    def measures(self, a: str, b: str) -> dict[str, float]:
        return {
            "acoustic": self.acoustic(a, b),
            "loudness LU": self.jump(a, b, "lufs"),
            "brightness oct": self.jump(a, b, "centroid"),
            "onsets/s": self.jump(a, b, "onset_rate"),
            "emotion yardstick": float(np.linalg.norm(self.yard[b]["start"] - self.yard[a]["end"])),
            "emotion shipped": float(np.linalg.norm(self.shipped[b]["start"] - self.shipped[a]["end"])),
        }

    def random_pairs(self) -> dict[str, float]:
        rows = [self.measures(a, b) for a in self.uris for b in self.uris if a != b]
        return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}

    def agreement(self) -> tuple[float, float]:
        """Pearson r of yardstick and shipped arousal, and of valence, over all openings and endings."""
        pairs = [(self.yard[u][r], self.shipped[u][r]) for u in self.uris for r in ("start", "end")]
        y, s = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
        return float(np.corrcoef(y[:, 0], s[:, 0])[0, 1]), float(np.corrcoef(y[:, 1], s[:, 1])[0, 1])

    def own_agreement(self) -> dict[str, float]:
        """Pearson r of queueemo's stored loudness, log2 brightness and log2 onset density with the
        judge's (its centroid is log2 Hz already; its onset rate gets the same floor and log2)."""
        out = {}
        for column, (name, key) in enumerate((("loudness", "lufs"), ("brightness", "centroid"),
                                              ("onsets", "onset_rate"))):
            pairs = [(self.own[u][r][column], self.described[u][r][key]) for u in self.uris
                     for r in ("start", "end") if np.isfinite(self.own[u][r][column])]
            mine, theirs = np.array(pairs).T
            if key == "onset_rate":
                theirs = np.log2(np.maximum(theirs, 0.25))
            out[name] = float(np.corrcoef(mine, theirs)[0, 1])
        return out

    def oracle(self, seed: str, length: int, cost) -> list[str]:
        """Greedy sequence from ``seed`` minimising ``cost(a, b)`` under the picker's spacing rules
        (artist and album spacing 3, relaxed together while they leave < 30 % of the pool)."""
        sequence = [seed]
        while len(sequence) < length:
            rest = [u for u in self.uris if u not in sequence]
            for spacing in range(SPACING, -1, -1):
                artists = {self.artists[u] for u in sequence[-spacing:]} if spacing else set()
                albums = {self.albums[u] for u in sequence[-spacing:]} if spacing else set()
                allowed = [u for u in rest if self.artists[u] not in artists
                           and self.albums[u] not in albums]
                if len(allowed) >= max(1, math.ceil(MIN_CHOICE_SHARE * len(rest))):
                    break
            sequence.append(min(allowed, key=lambda u: cost(sequence[-1], u)))
        return sequence


def ratios(judge: Judge, sequences: list[list[str]], random: dict[str, float],
           rng: np.random.Generator) -> dict[str, tuple[float, float, float]]:
    """Per measure: mean jump, × smoother than random pairs, and that ratio's bootstrap spread (std)
    over runs (each run resampled as a whole)."""
    per_run = [[judge.measures(s[i], s[i + 1]) for i in range(len(s) - 1)] for s in sequences]
    out = {}
    for key in random:
        runs = [np.array([t[key] for t in run]) for run in per_run]
        mean = float(np.concatenate(runs).mean())
        boot = [random[key] / max(np.concatenate([runs[i] for i in rng.integers(len(runs), size=len(runs))])
                                  .mean(), 1e-9) for _ in range(BOOTSTRAP)]
        out[key] = (mean, random[key] / max(mean, 1e-9), float(np.std(boot)))
    return out


def line(name: str, result: dict[str, tuple[float, float, float]], note: str = "") -> str:
    cells = "  ".join(f"{k} {m:.3f} ({r:.2f}±{s:.2f}×)" for k, (m, r, s) in result.items())
    return f"  {name:<36}{cells}{note}"


def markdown(name: str, result: dict[str, tuple[float, float, float]]) -> str:
    def cell(key: str, unit: str = "") -> str:
        m, r, s = result[key]
        return f"{r:.2f}× ±{s:.2f}" + (f" ({m:.1f} {unit})" if unit else "")

    return (f"| {name} | {cell('acoustic')} | {cell('loudness LU', 'LU')} | {cell('brightness oct')} "
            f"| {cell('onsets/s')} | {cell('emotion yardstick')} | {cell('emotion shipped')} |")


def parse_weights(text: str, brightness: float) -> list[Weights]:
    """"0.3" → (0.3, 0.3 × brightness, 0); "0.3:0.1" → (0.3, 0.1, 0); "0.3:0.1:0.5" → (0.3, 0.1, 0.5)."""
    out = []
    for item in text.split(","):
        loud, bright, onsets = [*item.split(":"), "", ""][:3]
        out.append((float(loud), float(bright) if bright else float(loud) * brightness,
                    float(onsets) if onsets else 0.0))
    return out


def label(weights: Weights) -> str:
    return ":".join(f"{w:g}" for w in weights)


def load_judge(work: Path, url: str, fitted: yardstick.Yardstick) -> Judge:
    """The analysed tracks of the index with their descriptors (cached in WORK/descriptors.json)."""
    import sqlalchemy as sa

    from queueemo.library.db import STATUS_OK, Track, open_library

    music = work / "music"
    with open_library(url) as library, library.session() as session:
        tracks = {os.path.relpath(t.path, music): t for t in
                  session.scalars(sa.select(Track).where(Track.status == STATUS_OK))
                  if Path(t.path).is_relative_to(music)}  # rows of another folder are not this library
        shipped = {u: {"start": np.array([t.opening_arousal, t.opening_valence]),
                       "end": np.array([t.closing_arousal, t.closing_valence])} for u, t in tracks.items()}
        artists = {u: (t.artist or "").casefold() for u, t in tracks.items()}
        albums = {u: (t.album or u).casefold() for u, t in tracks.items()}
        own = {u: {"start": _own(t.opening_lufs, t.opening_brightness, t.opening_onsets),
                   "end": _own(t.ending_lufs, t.ending_brightness, t.ending_onsets)}
               for u, t in tracks.items()}
    cache = work / "descriptors.json"
    described = json.loads(cache.read_text()) if cache.exists() else {}
    for uri in sorted(tracks):
        if uri not in described or set(yardstick.FEATURES) - set(described[uri]["start"]):
            described[uri] = describe_track(music / uri)
            cache.write_text(json.dumps(described))
    uris = sorted(tracks)
    yard = {}
    for u in uris:
        start, end = fitted.predict([described[u]["start"], described[u]["end"]])
        yard[u] = {"start": start, "end": end}
    return Judge(uris, artists, albums, {u: described[u] for u in uris}, yard, shipped, own)


def _own(lufs: float | None, brightness: float | None, onsets: float | None) -> np.ndarray:
    """queueemo's stored boundary acoustics on the picker's scale (NaN: not stored)."""
    from queueemo.candidates import MIN_BRIGHTNESS_HZ, MIN_ONSETS

    def log2(value: float | None, floor: float) -> float:
        return math.nan if value is None else math.log2(max(value, floor))

    return np.array([math.nan if lufs is None else lufs, log2(brightness, MIN_BRIGHTNESS_HZ),
                     log2(onsets, MIN_ONSETS)])


def collect(library: str, work: Path, weights: list[Weights], runs: int, reuse: bool,
            ) -> tuple[str, dict[Weights, list[list[str]]]]:
    """Build and scan the library, then the runs of every weight triple (kept in WORK/runs.json;
    ``reuse``: take the stored runs of a weight triple instead of running it again)."""
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    url = ensure_index(work, library)
    print(f"library {library}: built and scanned in {time.monotonic() - started:.0f} s", flush=True)
    store = work / "runs.json"
    stored = json.loads(store.read_text()) if reuse and store.exists() else {}
    out = {}
    process, sock = start_mpd(work)
    try:
        started = time.monotonic()
        for triple in weights:
            key = label(triple)
            if len(stored.get(key, [])) < runs:
                stored[key] = run_next(sock, url, work, triple, runs)
                store.write_text(json.dumps(stored))
            out[triple] = stored[key][:runs]
        print(f"library {library}: runs in {time.monotonic() - started:.0f} s", flush=True)
    finally:
        process.terminate()
        process.wait()
    return url, out


def judge_library(library: str, work: Path, url: str, fitted: yardstick.Yardstick,
                  runs: dict[Weights, list[list[str]]],
                  ) -> tuple[list[str], dict[Weights, tuple[float, float]], Judge]:
    """Print one library's trade-off curve and oracles; returns them as markdown table rows, per
    weight triple its score (see ``score``) and shipped-emotion ratio, and the judge."""
    judge = load_judge(work, url, fitted)
    rng = np.random.default_rng(0)
    random = judge.random_pairs()
    r_a, r_v = judge.agreement()
    print(f"\nlibrary {library}: {len(judge.uris)} analysed tracks, {len(set(judge.artists.values()))} "
          f"artists, {len(set(judge.albums.values()))} albums ({work / 'music'}); yardstick vs shipped "
          f"model on its openings and endings: r = {r_a:.2f} arousal, {r_v:.2f} valence")
    print("queueemo's own boundary acoustics vs the judge's (Pearson r over openings and endings): "
          + ", ".join(f"{name} {r:.2f}" for name, r in judge.own_agreement().items()))
    print("mean jump per transition (× = random pairs' mean / this mean, higher is smoother; "
          "± = bootstrap spread over runs):")
    print(line("random pairs", {k: (v, 1.0, 0.0) for k, v in random.items()}))
    rows, scores = [], {}
    for triple, sequences in runs.items():
        result = ratios(judge, sequences, random, rng)
        scores[triple] = (score(result), result["emotion shipped"][1])
        count = sum(len(s) - 1 for s in sequences)
        print(line(f"queueemo L:B:O={label(triple)}", result, f"  [{count} transitions]"))
        rows.append(markdown(", ".join(f"{w:g}" for w in triple), result))
    emotion = lambda a, b: float(np.linalg.norm(judge.yard[b]["start"] - judge.yard[a]["end"]))  # noqa: E731
    joint = lambda a, b: (judge.acoustic(a, b) / random["acoustic"]  # noqa: E731
                          + emotion(a, b) / random["emotion yardstick"])
    shipped = lambda a, b: float(np.linalg.norm(judge.shipped[b]["start"] - judge.shipped[a]["end"]))  # noqa: E731

    def picker_like(onsets: float):
        """Shipped emotion + 0.3 × loudness and brightness jumps (+ ``onsets`` × the onset jump), each
        in library spreads: what an onset-density term could add to the picker, simulated."""
        keys = (("lufs", 0.3), ("centroid", 0.3), ("onset_rate", onsets))
        return lambda a, b: shipped(a, b) + sum(w * judge.jump(a, b, k) / judge.spread[k] for k, w in keys)

    own_spread = np.nanstd([judge.own[u][r] for u in judge.uris for r in ("start", "end")], axis=0)

    def picker_own(weights: Weights):
        """The same greedy on queueemo's own stored acoustics (what the picker sees) instead of the
        judge's: how much of the gap to the judge's measure is the descriptors' disagreement."""
        scale = np.asarray(weights) / own_spread
        return lambda a, b: shipped(a, b) + float(np.nansum(
            scale * np.abs(judge.own[b]["start"] - judge.own[a]["end"])))

    for name, cost in (("greedy acoustic oracle", judge.acoustic),
                       ("greedy yardstick-emotion oracle", emotion),
                       ("greedy acoustic + yardstick oracle", joint),
                       ("simulated picker, 0.3", picker_like(0.0)),
                       ("simulated picker, 0.3 + onsets 0.3", picker_like(0.3)),
                       ("simulated on queueemo's own acoustics, 0.3:0.3:0", picker_own((0.3, 0.3, 0.0))),
                       ("simulated on queueemo's own acoustics, 0.3:0.3:0.3", picker_own((0.3, 0.3, 0.3)))):
        sequences = [judge.oracle(seed, 10, cost) for seed in judge.uris]
        result = ratios(judge, sequences, random, rng)
        print(line(name, result, "  [rules on, every track as seed]"))
        rows.append(markdown(f"{name} (rules on)", result))
    return rows, scores, judge


def union(judges: dict[str, Judge]) -> Judge:
    """Several libraries judged as one (URIs prefixed by their library's name)."""
    def merged(attribute: str) -> dict:
        return {f"{name}/{uri}": value for name, judge in judges.items()
                for uri, value in getattr(judge, attribute).items()}

    uris = [f"{name}/{uri}" for name, judge in judges.items() for uri in judge.uris]
    return Judge(uris, merged("artists"), merged("albums"), merged("described"), merged("yard"),
                 merged("shipped"), merged("own"))


def ceiling(judge: Judge) -> list[str]:
    """The yardstick-emotion and acoustic + yardstick oracles (rules on) on ``judge``'s library."""
    rng = np.random.default_rng(0)
    random = judge.random_pairs()
    emotion = lambda a, b: float(np.linalg.norm(judge.yard[b]["start"] - judge.yard[a]["end"]))  # noqa: E731
    joint = lambda a, b: (judge.acoustic(a, b) / random["acoustic"]  # noqa: E731
                          + emotion(a, b) / random["emotion yardstick"])
    print(f"\nboth libraries as one: {len(judge.uris)} tracks, {len(set(judge.artists.values()))} artists "
          f"(spreads and random pairs over the union)")
    rows = []
    for name, cost in (("greedy yardstick-emotion oracle", emotion),
                       ("greedy acoustic + yardstick oracle", joint)):
        sequences = [judge.oracle(seed, 10, cost) for seed in judge.uris]
        result = ratios(judge, sequences, random, rng)
        print(line(name, result, "  [rules on, every track as seed]"))
        rows.append(markdown(f"{name} (rules on, both libraries as one)", result))
    return rows


def score(result: dict[str, tuple[float, float, float]]) -> float:
    """How a weight pair does on one library: the geometric mean of its acoustic and yardstick-emotion
    ratios (both independent of queueemo; one cannot be bought by giving up the other)."""
    return math.sqrt(result["acoustic"][1] * result["emotion yardstick"][1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", choices=[*sorted(make_library.LIBRARIES), "all"], default="all")
    parser.add_argument("--work", type=Path, default=None,
                        help="work folder (one library only; default /tmp/qe-trans-LIBRARY)")
    parser.add_argument("--runs", type=int, default=10, help="runs of `next -n 10` per weight")
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS,
                        help="loudness weights to try (the trade-off curve); L:B sets both, L:B:O the "
                             "onset weight too")
    parser.add_argument("--brightness", type=float, default=1.0,
                        help="brightness weight as a share of the loudness weight")
    parser.add_argument("--data", type=Path, default=yardstick.DEFAULT_DATA,
                        help="the labelled data for the yardstick (default ../shared/data from the repo)")
    parser.add_argument("--yardstick-cache", type=Path, default=Path("/tmp/qe-yardstick.json"))
    parser.add_argument("--reuse", action="store_true",
                        help="judge the runs stored in WORK/runs.json again instead of running them")
    args = parser.parse_args()
    began = time.monotonic()
    libraries = sorted(make_library.LIBRARIES) if args.library == "all" else [args.library]
    if args.work and len(libraries) > 1:
        raise SystemExit("--work needs one --library")
    works = {name: (args.work or Path(f"/tmp/qe-trans-{name}")).resolve() for name in libraries}
    if any(REPO in w.parents or w == REPO for w in works.values()):
        raise SystemExit("--work must be outside the repository (the audio stays out of it)")
    weights = parse_weights(args.weights, args.brightness)
    collected = {name: collect(name, works[name], weights, args.runs, args.reuse) for name in libraries}
    fitted, best, figures = yardstick.build(args.data.resolve(), args.yardstick_cache)
    print("emotion yardstick (bench/yardstick.py), 5-fold CV grouped by artist/piece; 4q: sign accuracy "
          "(chance 0.5, quadrant 0.25), vgmidi: Pearson r; * = chosen by CV:")
    print("\n".join(yardstick.report(best, figures)))
    judged = {name: judge_library(name, works[name], url, fitted, runs)
              for name, (url, runs) in collected.items()}
    worst = {w: min(scores[w][0] for _, scores, _ in judged.values()) for w in weights}
    shipped = {w: min(scores[w][1] for _, scores, _ in judged.values()) for w in weights}
    top = max(worst.values())
    best = max((w for w in weights if worst[w] >= top - TIE), key=shipped.__getitem__)
    print(f"\nchoice rule: the highest √(acoustic× · yardstick×) on the worse library; weights within {TIE} "
          f"of it are ties, broken by the higher shipped-emotion × on the worse library (emotion stays "
          f"primary): loudness:brightness:onsets {label(best)}\n  "
          + ", ".join(f"{label(w)} {worst[w]:.2f} (shipped {shipped[w]:.2f}×)" for w in weights))
    tables = {name: rows for name, (rows, _, _) in judged.items()}
    if len(judged) > 1:
        tables["both libraries as one"] = ceiling(union({name: j for name, (_, _, j) in judged.items()}))
    print(f"\nmarkdown (per library; columns: weights L, B, O, acoustic, loudness, brightness, onsets, "
          f"emotion yardstick, emotion shipped), {time.monotonic() - began:.0f} s in all:")
    for name, rows in tables.items():
        print(f"\n{name}:\n" + "\n".join(rows))


if __name__ == "__main__":
    main()
