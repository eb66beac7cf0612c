"""A synthetic index of 1,000,000 analysed tracks on SQLite and on PostgreSQL, measured alike.

    python bench/index_scale.py [--tracks 1000000] [--sqlite PATH] [--pg-url URL] [--changes 1000]

Without ``--pg-url`` a private PostgreSQL server is started (Debian's binaries, as the tests do);
without ``--sqlite`` the file lives in a temporary folder. An index that already holds ``--tracks``
tracks is reused (writing a million takes minutes); an empty one is written first.

Per backend, in this order:
- full candidate load (streamed, median of 3) and the bytes of the compact table;
- incremental load after ``--changes`` tracks changed (half re-analysed, half new; median of 3
  rounds), then once more after the new tracks are deleted again, checked equal to a full load;
- pick latency with the candidates loaded, the reference's trajectory read from the index (median of 50);
- cold ``queueemo status`` in a new interpreter (median of 3; wall and CPU; target ≤ 1 s);
- the RSS of a real ``queueemo daemon`` (the whole process, read from /proc/PID/status) beside a
  throw-away MPD, once it has loaded every candidate and filled the queue from 200 tracks MPD knows
  (added for the run, removed after); target ≤ 300 MB.
Ratios are PostgreSQL over SQLite and incremental over full load, measured in the same run. CPU
seconds are this process's (the PostgreSQL server's own work is not in them): on a shared machine
they stretch less than wall times do.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from _queuebench import REPO, child_env, proc_status_mb, queue_length, running_mpd, wait_for

BATCH = 20_000
KNOWN = 200  # tracks MPD knows, so the measured daemon picks for real


def write_index(url: str, total: int, seed: int = 0) -> float:
    """``total`` analysed tracks (20-window trajectories) in batches; returns the seconds taken."""
    import sqlalchemy as sa

    from queueemo.library.db import Track, open_library

    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    with open_library(url) as library:
        for start in range(0, total, BATCH):
            count = min(BATCH, total - start)
            with library.session() as session:
                session.execute(sa.insert(Track), track_rows(rng, range(start, start + count)))
    return time.perf_counter() - started


def track_rows(rng: np.random.Generator, numbers: range, folder: str = "/music") -> list[dict]:
    """Analysed-track rows numbered ``numbers`` under ``folder``."""
    from queueemo.library.db import STATUS_OK, encode_trajectory

    blob = encode_trajectory(np.zeros((20, 2), np.float32))
    opening = rng.uniform(-0.9, 0.9, (len(numbers), 2))
    return [{
        "path": f"{folder}/artist{i % 20_000}/song{i}.ogg", "root": folder,
        "rel_path": f"artist{i % 20_000}/song{i}.ogg", "size": 1000, "mtime_ns": 0,
        "status": STATUS_OK, "artist": f"Artist {i % 20_000}", "genre": "rock", "album": f"Album {i // 12}",
        "title": f"Song {i % 900_000}", "model_version": "bench", "duration_s": 200.0, "trajectory": blob,
        "opening_arousal": float(a), "opening_valence": float(v), "closing_arousal": float(v),
        "closing_valence": float(a), "mean_arousal": 0.0, "mean_valence": 0.0,
    } for i, (a, v) in zip(numbers, opening, strict=True)]


def indexed(url: str) -> int:
    """How many tracks the index at ``url`` holds (0 when it does not exist yet)."""
    import sqlalchemy as sa

    from queueemo.library.db import Track, open_library

    with open_library(url) as library, library.session() as session:
        return session.execute(sa.select(sa.func.count()).select_from(Track)).scalar_one()


def same_columns(one, other) -> bool:
    """Whether two candidate tables hold the same rows (name codes aside)."""
    return (np.array_equal(one.ids, other.ids) and list(one.paths) == list(other.paths)
            and list(one.uris) == list(other.uris) and list(one.artists) == list(other.artists)
            and np.array_equal(one.album, other.album) and np.array_equal(one.recording, other.recording)
            and np.array_equal(one.opening, other.opening)
            and np.array_equal(one.acoustics, other.acoustics, equal_nan=True))


def measure_loads(url: str, tracks: int, changes: int) -> dict[str, float]:
    """Full and incremental candidate loads, and pick latency, in this process."""
    import sqlalchemy as sa

    from queueemo import picker
    from queueemo.library.candidates import load_all, load_changes
    from queueemo.library.db import Track, open_library
    from queueemo.queueing import trajectory_of

    results: dict[str, float] = {}
    rng = np.random.default_rng(7)
    with open_library(url) as library:
        loads, load_cpus = [], []
        for _ in range(3):
            loaded = None
            started, cpu = time.perf_counter(), time.process_time()
            with library.session() as session:
                loaded = load_all(session, "/music", time.time())
            loads.append(time.perf_counter() - started)
            load_cpus.append(time.process_time() - cpu)
        results["load_s"], results["load_cpu_s"] = statistics.median(loads), statistics.median(load_cpus)
        results["table_mb"] = loaded.table.nbytes / 2**20
        updates, update_cpus, added = [], [], []
        for round_ in range(3):
            ids = rng.choice(loaded.table.ids, changes // 2, replace=False).tolist()
            numbers = range(tracks + round_ * changes, tracks + round_ * changes + changes - changes // 2)
            with library.session() as session:
                session.execute(sa.update(Track).where(Track.id.in_(ids))
                                .values(opening_arousal=float(rng.uniform(-0.9, 0.9))))
                session.execute(sa.insert(Track), track_rows(rng, numbers))
                added += session.execute(sa.select(Track.id).where(Track.model_version == "bench")
                                         .order_by(Track.id.desc()).limit(len(numbers))).scalars().all()
            started, cpu = time.perf_counter(), time.process_time()
            with library.session() as session:
                loaded = load_changes(session, loaded, time.time())
            updates.append(time.perf_counter() - started)
            update_cpus.append(time.process_time() - cpu)
            assert loaded is not None, "incremental load fell back to a full load"
        with library.session() as session:
            session.execute(sa.delete(Track).where(Track.id.in_(added)))
        started = time.perf_counter()
        with library.session() as session:
            loaded = load_changes(session, loaded, time.time())
        results["delete_s"] = time.perf_counter() - started
        results["deleted"] = len(added)
        with library.session() as session:
            results["equal"] = float(same_columns(loaded.table, load_all(session, "/music", 0.0).table))
        results["update_s"] = statistics.median(updates)
        results["update_cpu_s"] = statistics.median(update_cpus)
        candidates = picker.Candidates.of(loaded.table)
        rules = picker.Rules()
        reasons = picker.static_reasons(candidates, rules)
        context = picker.Context(now=time.time(), history=(), queue=())
        hold = lambda history, steps: np.repeat(history[-1:], steps, axis=0)  # noqa: E731
        picks, pick_cpus = [], []
        for _ in range(50):
            row = int(rng.integers(len(candidates)))
            started, cpu = time.perf_counter(), time.process_time()
            tail = trajectory_of(library, candidates.paths[row])[-picker.TAIL_WINDOWS:]
            picker.pick_next(candidates=candidates, base_reasons=reasons, context=context, rules=rules,
                             reference=candidates.uris[row], tail=tail, forecast=hold, rng=rng)
            picks.append(time.perf_counter() - started)
            pick_cpus.append(time.process_time() - cpu)
        results["pick_ms"] = 1000 * statistics.median(picks)
        results["pick_cpu_ms"] = 1000 * statistics.median(pick_cpus)
    return results


def cold_status(url: str) -> tuple[float, float]:
    """Median wall and CPU seconds of ``queueemo status`` in a new interpreter."""
    command = [sys.executable, "-c", "from queueemo.cli import main; main()", "status", "--db", url]
    walls, cpus = [], []
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(command, env=child_env(), capture_output=True, text=True)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        if done.returncode:
            raise SystemExit(f"status failed: {done.stderr.strip()}")
    return statistics.median(walls), statistics.median(cpus)


def daemon_footprint(url: str, tracks: int, tmp: Path, sock: str, music: Path) -> dict[str, float]:
    """A real daemon on the index (plus ``KNOWN`` tracks MPD knows): RSS once the queue is filled."""
    import sqlalchemy as sa

    from queueemo.library.db import Track, open_library

    rows = track_rows(np.random.default_rng(3), range(KNOWN), folder=str(music))
    for i, row in enumerate(rows):  # the files running_mpd made
        row.update(path=str(music / f"song{i}.ogg"), rel_path=f"song{i}.ogg")
    with open_library(url) as library, library.session() as session:
        session.execute(sa.insert(Track), rows)
    log = tmp / "daemon.log"
    notify_path = str(tmp / "notify.sock")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(notify_path)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(600)
    env = child_env(MPD_HOST=sock, QUEUEEMO_DB=url, XDG_CONFIG_HOME=str(tmp), NOTIFY_SOCKET=notify_path)
    with open(log, "w") as stderr:
        daemon = subprocess.Popen([sys.executable, "-c", "from queueemo.cli import main; main()", "daemon"],
                                  env=env, stderr=stderr)
    try:
        assert notify.recv(64) == b"READY=1"
        wait_for(lambda: queue_length(sock) >= 2, timeout=600, what="the daemon's first top-up")
        time.sleep(2)
        result = {"daemon_rss_mb": proc_status_mb(daemon.pid, "VmRSS"),
                  "daemon_peak_mb": proc_status_mb(daemon.pid, "VmHWM")}
    finally:
        daemon.terminate()
        daemon.wait(60)
        notify.close()
        with open_library(url) as library, library.session() as session:
            session.execute(sa.delete(Track).where(Track.root == str(music)))
        with contextlib.suppress(Exception):  # the MPD queue is emptied for the next backend
            import mpd

            client = mpd.MPDClient()
            client.connect(sock)
            client.clear()
            client.disconnect()
    loaded = re.search(r"loaded (\d+) candidates in ([\d.]+) s", log.read_text())
    if loaded is None or int(loaded[1]) < tracks:
        raise SystemExit(f"the daemon did not load the index; its log: {log.read_text()[-2000:]}")
    result["daemon_load_s"] = float(loaded[2])
    return result


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
    parser.add_argument("--sqlite", default=None, help="SQLite file to reuse (default: a temporary one)")
    parser.add_argument("--pg-url", default=None)
    parser.add_argument("--changes", type=int, default=1000)
    args = parser.parse_args()
    results = {}
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs at the start", flush=True)
    with (tempfile.TemporaryDirectory(prefix="queueemo-bench-") as tmp, postgres_url(args.pg_url) as pg,
          running_mpd(Path(tmp) / "mpd", songs=KNOWN) as sock):
        sqlite = f"sqlite:///{args.sqlite or Path(tmp) / 'index.sqlite3'}"
        for name, url in (("sqlite", sqlite), ("postgresql", pg)):
            count = indexed(url)
            if count == 0:
                print(f"{name}: {args.tracks:,} tracks written in {write_index(url, args.tracks):.0f} s")
            elif count != args.tracks:
                raise SystemExit(f"{name}: the index holds {count:,} tracks, not {args.tracks:,}")
            r = results[name] = measure_loads(url, args.tracks, args.changes)
            r["status_s"], r["status_cpu_s"] = cold_status(url)
            r.update(daemon_footprint(url, args.tracks, Path(tmp), sock, Path(tmp) / "mpd" / "music"))
            print(f"{name}: {args.tracks:,} tracks\n"
                  f"  full candidate load {r['load_s']:.2f} s ({r['load_cpu_s']:.2f} s CPU here; compact "
                  f"table {r['table_mb']:.0f} MB); incremental after {args.changes} changes "
                  f"{r['update_s'] * 1000:.0f} ms ({r['update_cpu_s'] * 1000:.0f} ms CPU; "
                  f"{r['update_s'] / r['load_s']:.3f}x the full load), after {r['deleted']:.0f} "
                  f"deletions {r['delete_s'] * 1000:.0f} ms; equal to a full load: "
                  f"{'yes' if r['equal'] else 'NO'}\n"
                  f"  pick {r['pick_ms']:.1f} ms ({r['pick_cpu_ms']:.1f} ms CPU here; target ≤ 50)\n"
                  f"  cold status {r['status_s']:.2f} s wall, {r['status_cpu_s']:.2f} s CPU (target ≤ 1 s)\n"
                  f"  daemon RSS {r['daemon_rss_mb']:.0f} MB, peak {r['daemon_peak_mb']:.0f} MB "
                  f"(target ≤ 300 MB; its candidate load {r['daemon_load_s']:.1f} s)", flush=True)
    lite, server = results["sqlite"], results["postgresql"]
    keys = ("load_s", "load_cpu_s", "update_s", "pick_ms", "pick_cpu_ms", "status_s", "status_cpu_s",
            "daemon_rss_mb")
    print("PostgreSQL / SQLite: " + ", ".join(f"{key} {server[key] / lite[key]:.2f}x" for key in keys))
    print(f"load average {os.getloadavg()[0]:.1f} at the end (wall times stretch with it; CPU times less)")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
