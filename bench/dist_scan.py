"""Distributed scan: 1, 2 and 3 ``queueemo scan --worker`` processes sharing one PostgreSQL index.

    python bench/dist_scan.py DIR [--workers 1 2 3] [--repeat 2] [--clip 30] [--tracks N] [--model v2]

DIR is a real-audio folder (``bench/make_library.py`` builds one from Debian game-music packages).
With ``--clip S`` every file is first cut to its first S seconds (re-encoded in its own format, so
headers give the new duration) so that a run stays affordable; ``--clip 0`` keeps them whole. Each
worker has its own mount point of the same folder (a symlink ``mnt/wK``) mapped by its own config,
``[library] root_names = ["music=…/mnt/wK"]``, as machines sharing a NAS would; each analyses one
file at a time (``--jobs 1``).

For every repeat and worker count, in turn: a fresh database on a private PostgreSQL server started by
the script (as the tests do), the N workers started together, and the wall time from their start
until the last one exits (start-up — torch import, model load — included, as a user would see it).
Printed: tracks/s and audio-seconds analysed per wall-second, medians over the repeats, the scaling
efficiency throughput(n) / (n × throughput(1)) against the single worker measured in the same run,
and the workers' CPU time per track and cores used on average (CPU-s / wall-s): on a shared machine
that shows how much of the cores the workers actually got. Every run is checked: each track stored
once (all ``ok``, no claim left, the workers' counts add up to the track count) and analysed once (no
worker lost a claim and redid a track).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from _queuebench import REPO, child_env

from queueemo.library.discover import discover, resolve_roots
from queueemo.library.tags import read_tags


def clipped(source: Path, out: Path, seconds: float, tracks: int | None) -> list[Path]:
    """The audio files under ``source`` (the first ``tracks``), cut to ``seconds`` into ``out``."""
    found = sorted(Path(f.path) for f in discover(resolve_roots([source])))[:tracks]
    if not seconds:
        return found
    files = []
    for path in found:
        target = out / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(path), "-map", "0:a:0",
                        "-t", str(seconds), str(target)], check=True)
        files.append(target)
    return files


@contextlib.contextmanager
def postgres() -> Iterator[object]:
    """A private PostgreSQL server for the whole run (Debian's binaries, as the tests start it)."""
    sys.path.insert(0, str(REPO / "tests"))
    from pg import PostgresServer

    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


def run(folder: Path, scratch: Path, url: str, workers: int,
        model: str) -> tuple[float, float, list[str]]:
    """Wall and CPU time of ``workers`` workers scanning ``folder`` from their own mount points, and
    their stderr. The CPU time (theirs and their decoders') shows the share of the cores they got."""
    from queueemo.library import open_library

    open_library(url).close()  # the schema exists before the workers race to it
    processes = []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for number in range(1, workers + 1):
        mount = scratch / "mnt" / f"w{number}"
        if not mount.exists():
            mount.parent.mkdir(exist_ok=True)
            mount.symlink_to(folder)
        config = scratch / f"w{number}.toml"
        config.write_text(f'[library]\nroot_names = ["music={mount}"]\n', encoding="utf-8")
        processes.append(subprocess.Popen(
            [sys.executable, "-c", "from queueemo.cli import main; main()", "--config", str(config),
             "scan", "--worker", str(mount), "--db", url, "--jobs", "1", "--model", model],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=child_env(),
        ))
    started = time.monotonic()
    errors = []
    for process in processes:
        _, err = process.communicate()
        if process.returncode:
            raise SystemExit(f"a worker failed ({process.returncode}): {err.strip()[-500:]}")
        errors.append(err)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu, errors


def check_once(url: str, tracks: int, errors: list[str]) -> str:
    """Raise unless every track was stored and analysed exactly once; the per-worker counts."""
    import sqlalchemy as sa

    from queueemo.library import Track, open_library
    from queueemo.library.claims import ScanWorker

    with open_library(url) as library, library.session() as session:
        statuses = session.execute(sa.select(Track.status, Track.claimed_by)).all()
        counts = sorted(session.scalars(sa.select(ScanWorker.analysed)), reverse=True)
    redone = sum(err.count("lost the claim") for err in errors)
    if len(statuses) != tracks or any(s != ("ok", None) for s in statuses) or sum(counts) != tracks \
            or redone:
        raise SystemExit(f"not exactly once: {len(statuses)} rows for {tracks} files, statuses "
                         f"{sorted(set(statuses))}, worker counts {counts}, {redone} analysed twice")
    return "+".join(map(str, counts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--clip", type=float, default=30.0, help="seconds kept of each file (0: all)")
    parser.add_argument("--tracks", type=int, default=None, help="use only the first N files")
    parser.add_argument("--model", default="v2")
    args = parser.parse_args()
    if 1 not in args.workers:
        raise SystemExit("--workers must include 1: the baseline")

    with tempfile.TemporaryDirectory(prefix="queueemo-dist-") as tmp, postgres() as server:
        scratch = Path(tmp)
        folder = scratch / "music" if args.clip else args.folder.resolve()
        files = clipped(args.folder.resolve(), scratch / "music", args.clip, args.tracks)
        if len(files) < 30:
            print(f"warning: only {len(files)} tracks (the benchmark asks for at least 30)")
        audio_s = sum(read_tags(str(path)).duration_s or 0.0 for path in files)
        cut = f"first {args.clip:g} s of each" if args.clip else "whole files"
        print(f"{len(files)} tracks, {audio_s / 60:.1f} audio-minutes ({cut}), model {args.model}, "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start", flush=True)
        walls: dict[int, list[float]] = {n: [] for n in args.workers}
        cpus: dict[int, list[float]] = {n: [] for n in args.workers}
        for repeat in range(args.repeat):
            for workers in args.workers:
                url = server.new_database()
                wall, cpu, errors = run(folder, scratch, url, workers, args.model)
                split = check_once(url, len(files), errors)
                server.drop_database(url)
                walls[workers].append(wall)
                cpus[workers].append(cpu)
                print(f"  run {repeat + 1}: {workers} worker(s) {wall:6.1f} s, {cpu:6.1f} CPU-s, tracks per "
                      f"worker {split}, load average {os.getloadavg()[0]:.1f}", flush=True)
    base = len(files) / statistics.median(walls[1])
    cores = os.cpu_count() or 1
    print(f"{'workers':>7} {'wall s':>7} {'tracks/s':>9} {'audio-s/s':>10} {'vs 1':>6} {'efficiency':>10} "
          f"{'CPU-s/track':>11} {'cores used':>10}")
    for workers in args.workers:
        wall, cpu = statistics.median(walls[workers]), statistics.median(cpus[workers])
        rate = len(files) / wall
        print(f"{workers:7d} {wall:7.1f} {rate:9.3f} {audio_s / wall:10.2f} {rate / base:5.2f}x "
              f"{rate / (workers * base):10.2f} {cpu / len(files):11.2f} {cpu / wall:5.2f} of {cores}")
    print(f"every run: each of the {len(files)} tracks analysed and stored exactly once. "
          f"{os.cpu_count()} CPUs: more workers than cores cannot scale further.")


if __name__ == "__main__":
    main()
