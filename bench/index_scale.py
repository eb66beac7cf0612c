"""A synthetic index of 1,000,000 analysed tracks on SQLite and on PostgreSQL, measured alike.

    python bench/index_scale.py [--tracks 1000000] [--pg-url URL]

Without ``--pg-url`` a private PostgreSQL server is started (Debian's binaries, as the tests do).
Per backend: candidate load (median of 3), pick latency with the candidates loaded (median of 50),
the RSS of this process holding them (what the daemon holds), and cold ``queueemo status`` (median of
3; target ≤ 1 s). Ratios are PostgreSQL over SQLite, measured in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from _queuebench import REPO, child_env

BATCH = 20_000


def rss_mb() -> float:
    """Resident set size of this process now, in MB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def write_index(url: str, total: int, seed: int = 0) -> float:
    """``total`` analysed tracks (20-window trajectories) in batches; returns the seconds taken."""
    import sqlalchemy as sa

    from queueemo.library.db import STATUS_OK, Track, encode_trajectory, open_library

    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    with open_library(url) as library:
        for start in range(0, total, BATCH):
            count = min(BATCH, total - start)
            opening = rng.uniform(-0.9, 0.9, (count, 2))
            blob = encode_trajectory(np.zeros((20, 2), np.float32))
            rows = [{
                "path": f"/music/artist{i % 20_000}/song{i}.ogg", "root": "/music",
                "rel_path": f"artist{i % 20_000}/song{i}.ogg", "size": 1000, "mtime_ns": 0,
                "status": STATUS_OK, "artist": f"Artist {i % 20_000}", "genre": "rock",
                "model_version": "bench", "duration_s": 200.0, "trajectory": blob,
                "opening_arousal": float(a), "opening_valence": float(v),
                "closing_arousal": float(v), "closing_valence": float(a),
                "mean_arousal": 0.0, "mean_valence": 0.0,
            } for i, (a, v) in zip(range(start, start + count), opening, strict=True)]
            with library.session() as session:
                session.execute(sa.insert(Track), rows)
    return time.perf_counter() - started


def indexed(url: str) -> int:
    """How many tracks the index at ``url`` holds (0 when it does not exist yet)."""
    import sqlalchemy as sa

    from queueemo.library.db import Track, open_library

    with open_library(url) as library, library.session() as session:
        return session.execute(sa.select(sa.func.count()).select_from(Track)).scalar_one()


def measure(url: str) -> dict[str, float]:
    """Candidate load, pick latency, RSS and cold ``status`` on the index at ``url``."""
    from queueemo import picker
    from queueemo.library.db import open_library
    from queueemo.queueing import load_candidates, trajectory_of

    results: dict[str, float] = {}
    with open_library(url) as library:
        before = rss_mb()
        loads = []
        for _ in range(3):
            candidates = None
            gc.collect()
            started = time.perf_counter()
            candidates = load_candidates(library, "/music")
            loads.append(time.perf_counter() - started)
        results["load_s"] = statistics.median(loads)
        results["rss_mb"] = rss_mb()
        results["rss_delta_mb"] = results["rss_mb"] - before
        rules = picker.Rules()
        reasons = picker.static_reasons(candidates, rules)
        rng = np.random.default_rng(1)
        context = picker.Context(now=time.time(), history=(), queue=())
        hold = lambda history, steps: np.repeat(history[-1:], steps, axis=0)  # noqa: E731
        picks = []
        for _ in range(50):
            row = int(rng.integers(len(candidates)))
            started = time.perf_counter()
            tail = trajectory_of(library, candidates.paths[row])[-picker.TAIL_WINDOWS:]
            picker.pick_next(candidates=candidates, base_reasons=reasons, context=context, rules=rules,
                             reference=candidates.uris[row], tail=tail, forecast=hold, rng=rng)
            picks.append(time.perf_counter() - started)
        results["pick_ms"] = 1000 * statistics.median(picks)
    command = [sys.executable, "-c", "from queueemo.cli import main; main()", "status", "--db", url]
    walls = []
    for _ in range(3):
        started = time.perf_counter()
        done = subprocess.run(command, env=child_env(), capture_output=True, text=True)
        walls.append(time.perf_counter() - started)
        if done.returncode:
            raise SystemExit(f"status failed: {done.stderr.strip()}")
    results["status_s"] = statistics.median(walls)
    return results


@contextlib.contextmanager
def postgres_url(given: str | None) -> Iterator[str]:
    """``given``, or a fresh database on a private server started for this run."""
    if given:
        yield given
        return
    sys.path.insert(0, str(REPO / "tests"))
    from pg import PostgresServer

    server = PostgresServer.start()
    try:
        yield server.new_database()
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=1_000_000)
    parser.add_argument("--pg-url", default=None)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="queueemo-bench-") as tmp, postgres_url(args.pg_url) as pg:
        for name, url in (("sqlite", f"sqlite:///{Path(tmp) / 'index.sqlite3'}"), ("postgresql", pg)):
            written = write_index(url, args.tracks)
            print(f"{name}: {args.tracks:,} tracks written in {written:.0f} s", flush=True)
            results[name] = measure(url)
            r = results[name]
            print(f"  candidate load {r['load_s']:.2f} s, pick {r['pick_ms']:.1f} ms, "
                  f"RSS {r['rss_mb']:.0f} MB (+{r['rss_delta_mb']:.0f} MB for the candidates), "
                  f"cold status {r['status_s']:.2f} s", flush=True)
    lite, pg_results = results["sqlite"], results["postgresql"]
    print("PostgreSQL / SQLite: " + ", ".join(
        f"{key} {pg_results[key] / lite[key]:.2f}x" for key in ("load_s", "pick_ms", "status_s")))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
