"""Pick latency on a synthetic 100,000-track index, and the cold wall time of ``next --dry-run``.

    python bench/pick.py [--tracks 100000] [--picks 200]

The index is written in bulk through the library's models (random-walk trajectories, 30 s each).
Picks use every rule (album spacing, duplicate recordings, continuity terms over random boundary
acoustics) in flow, arc and path mode. MPD gets 1,000 real one-second files (hard links of one file,
so its update takes seconds); the other tracks lie outside its music directory. They are still
loaded and scored on every pick, which is what the latency is about. Targets: median pick ≤ 50 ms,
cold ``next --dry-run`` ≤ 1.5 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _queuebench import child_env, running_mpd, write_index


def with_acoustics(candidates, rng: np.random.Generator):
    """The candidates with albums, titles, durations and boundary acoustics, as a real index has."""
    import dataclasses

    from queueemo import picker
    from queueemo.candidates import acoustic_rows, album_key, recording_key

    n = len(candidates)
    acoustics = acoustic_rows([  # ACOUSTIC_COLUMNS: duration, ending start, LUFS, Hz, onsets/s at both ends
        rng.uniform(90, 400, n), rng.uniform(80, 380, n), rng.normal(-16, 4, n), rng.normal(-16, 4, n),
        rng.uniform(500, 4000, n), rng.uniform(500, 4000, n), rng.uniform(0, 8, n), rng.uniform(0, 8, n)], n)
    album = np.array([album_key(f"album {i // 12}") for i in range(n)], dtype=np.int64)
    recording = np.array([recording_key(artist, f"title {i % 40_000}")  # some duplicate recordings
                          for i, artist in enumerate(candidates.artists)], dtype=np.int64)
    return picker.Candidates.of(dataclasses.replace(candidates.table, acoustics=acoustics, album=album,
                                                    recording=recording))


def pick_latency(url: str, music: Path, picks: int) -> None:
    import dataclasses

    import queueemo
    from queueemo import picker
    from queueemo.arc import parse_arc, path_targets
    from queueemo.errors import ModelError
    from queueemo.library.db import open_library
    from queueemo.queueing import picker_candidates, trajectory_of

    forecast = queueemo.forecast
    try:
        forecast(np.zeros((10, 2), np.float32), 1)
    except ModelError as exc:
        print(f"  (no forecaster weights: {exc}; timing with a hold-last-value forecast)")
        forecast = lambda history, steps: np.repeat(history[-1:], steps, axis=0)  # noqa: E731
    rng = np.random.default_rng(1)
    with open_library(url) as library:
        started = time.perf_counter()
        candidates = picker_candidates(library, str(music))
        loaded = time.perf_counter() - started
        candidates = with_acoustics(candidates, rng)
        rules = picker.Rules(loudness_weight=0.2, brightness_weight=0.1, onset_weight=0.3)
        reasons = picker.static_reasons(candidates, rules)
        now = time.time()
        known = [u for u in candidates.uris if u is not None]
        history = tuple(picker.Play(known[i], f"Artist {i}", now - 60 * i) for i in range(200))
        queue = tuple(picker.Play(known[-i], "") for i in range(1, 21))
        context = picker.Context(now=now, history=history, queue=queue)
        arc = parse_arc("calm:energetic", 30)
        path = path_targets(np.array([-0.5, 0.2]), np.array([0.6, 0.4]), 10)
        targets = {"flow": lambda i: None, "arc": lambda i: arc.target(60.0 * (i % 30)),
                   "path": lambda i: path[i % 10], "flow without the onset term": lambda i: None}
        with_onsets = rules
        for mode, target_of in targets.items():
            rules = dataclasses.replace(with_onsets, onset_weight=0.0) if "without" in mode else with_onsets
            times = []
            for number in range(picks):
                row = candidates.index[known[int(rng.integers(len(known)))]]
                started = time.perf_counter()
                tail = trajectory_of(library, candidates.paths[row])[-picker.TAIL_WINDOWS:]
                chosen = picker.pick_next(candidates=candidates, base_reasons=reasons,
                                          context=context, rules=rules,
                                          reference=candidates.uris[row], tail=tail,
                                          forecast=forecast, rng=rng, target=target_of(number))
                times.append(time.perf_counter() - started)
                assert chosen is not None
            print(f"  {mode} pick latency over {picks} picks: median "
                  f"{1000 * statistics.median(times):.1f} ms, p95 {1000 * np.percentile(times, 95):.1f} ms"
                  "  (target ≤ 50 ms)")
    print(f"  candidates loaded once: {len(candidates):,} in {loaded:.2f} s")


def cold_next(url: str, sock: str, root: Path, runs: int = 5) -> None:
    import mpd

    client = mpd.MPDClient()
    client.connect(sock)
    client.clear()
    client.add("song1.ogg")
    client.disconnect()
    env = child_env(MPD_HOST=sock, QUEUEEMO_DB=url, XDG_CONFIG_HOME=str(root))
    command = [sys.executable, "-c", "from queueemo.cli import main; main()", "next", "--dry-run"]
    walls = []
    for _ in range(runs):
        started = time.perf_counter()
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        walls.append(time.perf_counter() - started)
        if result.returncode:
            raise SystemExit(f"next failed: {result.stderr.strip()}")
    print(f"  cold `queueemo next --dry-run`: median {statistics.median(walls):.2f} s of {runs} "
          f"(min {min(walls):.2f}, max {max(walls):.2f}; target ≤ 1.5 s)")
    baseline = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import queueemo.cli"], check=True, env=env)
        baseline.append(time.perf_counter() - started)
    print(f"  baseline, start + `import queueemo.cli`: median {statistics.median(baseline):.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--picks", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="queueemo-bench-") as tmp:
        root = Path(tmp)
        url = f"sqlite:///{root / 'index.sqlite3'}"
        with running_mpd(root / "mpd", songs=1000) as sock:
            music = root / "mpd" / "music"
            started = time.perf_counter()
            write_index(url, music, args.tracks, known=1000)
            print(f"synthetic index: {args.tracks:,} tracks written in "
                  f"{time.perf_counter() - started:.1f} s")
            pick_latency(url, music, args.picks)
            cold_next(url, sock, root)


if __name__ == "__main__":
    main()
