"""Scan speed and memory on real audio files, against the decode floor and bliss-rs.

    python bench/scan.py DIR [--jobs N] [--repeat R] [--model v2|v2-lite|seed] [--baseline PYTHON]

On the audio files under DIR, with N parallel processes (default: all cores), each step R times
(median printed; the floor and the scan alternate, so both see the same load):

- **decode floor**: ffmpeg decodes every file to mono float32 at the model's sample rate (16 kHz for
  v2, 44.1 kHz for seed) into /dev/null, N at a time: what any analyser that decodes the audio must pay;
- **queueemo scan**: ``queueemo scan DIR --jobs N`` into a new temporary database, in a fresh process
  (start-up, model loading and storing included), with the peak memory of its whole process tree,
  sampled every 0.1 s: RSS summed (counts shared libraries once per process) and PSS summed (shares
  them out: the memory the scan really takes);
- **worker start-up**: a fresh interpreter importing torch and loading the model, as each worker does;
- **bliss-rs** (PyPI ``bliss-audio``; 0.1.11 runs on an AVX2-only CPU, 0.2.0 dies with SIGILL), if
  importable: ``bliss_audio.Song(path)`` on every file, in N worker processes that are restarted when
  bliss crashes on a file (crashes are counted).

Targets: scan ≤ 2 × decode floor for v2 (issue 7; 1.3 × for seed, issue 3), no slower than
bliss-rs, peak RSS ≤ 1 GB.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from queueemo.library.analysis import default_jobs
from queueemo.library.discover import discover, resolve_roots
from queueemo.library.tags import read_tags

# Run by each bliss worker: analyse the paths given on stdin, report each one before and after.
_BLISS_WORKER = """
import sys, bliss_audio
for line in sys.stdin:
    path = line.rstrip("\\n")
    print("start", flush=True)
    try:
        bliss_audio.Song(path)
        print("ok", flush=True)
    except Exception:
        print("error", flush=True)
"""


SAMPLE_RATES = {"v2": 16_000, "v2-lite": 16_000, "seed": 44_100}


def _children_cpu() -> float:
    """CPU seconds of every finished child process so far (their own children included)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _adopt_orphans() -> None:
    """Become the subreaper of our descendants: a scan's forkserver (and its workers) outlive the scan
    by a moment and would be reaped by init, their CPU time lost to ``_children_cpu``."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _reap_orphans() -> None:
    """Wait for every remaining descendant (adopted by ``_adopt_orphans``), adding their CPU time."""
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def _load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def decode_floor(files: list[str], jobs: int, sample_rate: int) -> float:
    """Wall time for ffmpeg to decode every file, ``jobs`` at a time."""

    def decode(path: str) -> None:
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "quiet", "-i", f"file:{path}", "-map", "0:a:0", "-vn",
             "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", "-y", "/dev/null"],
            check=False,
        )

    started = time.monotonic()
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(decode, files))
    return time.monotonic() - started


def _tree_memory(session_id: int) -> tuple[int, int]:
    """Resident and proportional (shared pages split between sharers) bytes of every process in a
    session: the scan, its workers and their ffmpegs. PSS does not count libtorch N times."""
    rss = pss = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[3]) != session_id:  # field 6: session id
                continue
            for line in Path(entry.path, "smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            continue
    return rss, pss


def queueemo_scan(root: str, jobs: int, model: str,
                  python: str = sys.executable) -> tuple[float, tuple[int, int], str]:
    """Wall time, peak (RSS, PSS) of the process tree, and summary line of a scan into a new database.

    ``python``: the interpreter to run it with (another one may have another queueemo installed).
    """
    with tempfile.TemporaryDirectory(prefix="queueemo-bench-") as scratch:
        command = [python, "-c", "from queueemo.cli import main; main()", "scan", os.path.abspath(root),
                   "--jobs", str(jobs), "--db", f"sqlite:///{scratch}/library.sqlite3", "--model", model]
        peak = (0, 0)
        started = time.monotonic()
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                 start_new_session=True, cwd=scratch)  # no package from the cwd
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.wait(0.1):
                rss, pss = _tree_memory(child.pid)
                peak = (max(peak[0], rss), max(peak[1], pss))

        sampler = threading.Thread(target=sample)
        sampler.start()
        output, _ = child.communicate()
        elapsed = time.monotonic() - started
        _reap_orphans()
        done.set()
        sampler.join()
        if child.returncode:
            raise SystemExit(f"queueemo scan failed with status {child.returncode}")
    return elapsed, peak, output.strip().splitlines()[-1]


def bliss(files: list[str], jobs: int) -> tuple[float, int]:
    """Wall time for bliss-rs on every file, and how many files crashed a worker."""
    chunks = [files[i::jobs] for i in range(jobs)]
    crashes = 0
    lock = threading.Lock()

    def run(chunk: list[str]) -> None:
        nonlocal crashes
        while chunk:
            worker = subprocess.run([sys.executable, "-c", _BLISS_WORKER], input="\n".join(chunk) + "\n",
                                    capture_output=True, text=True, check=False)
            started = worker.stdout.split().count("start")
            if worker.returncode == 0:
                return
            with lock:
                crashes += 1
            chunk = chunk[started:]  # the file it died on is skipped

    started = time.monotonic()
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(run, chunks))
    return time.monotonic() - started, crashes


def worker_start_up(model: str) -> float:
    """Wall time of a fresh interpreter importing torch and warming up the backend, as a worker does."""
    code = ("from queueemo.library.analysis import ModelAnalyser; "
            f"ModelAnalyser({model!r}).warm_up()")
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.monotonic() - started


def _median(runs: list[float]) -> float:
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--jobs", type=int, default=0, help="parallel processes (0 = all cores)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each step (median printed)")
    parser.add_argument("--model", choices=sorted(SAMPLE_RATES), default="v2")
    parser.add_argument("--baseline", metavar="PYTHON",
                        help="also scan in every run with this interpreter (before/after: a venv where "
                             "another version of queueemo is installed)")
    args = parser.parse_args()
    jobs = args.jobs or default_jobs()
    files = [found.path for found in discover(resolve_roots([args.folder]))]
    if not files:
        raise SystemExit(f"no audio files under {args.folder}")
    hours = sum(read_tags(path).duration_s or 0.0 for path in files) / 3600
    print(f"files          {len(files)} ({hours:.2f} audio-hours), {jobs} parallel processes")

    _adopt_orphans()
    floors, scans, floor_cpu, scan_cpu, loads = [], [], [], [], [_load()]
    baselines: list[float] = []
    for _ in range(args.repeat):
        before = _children_cpu()
        floors.append(decode_floor(files, jobs, SAMPLE_RATES[args.model]))
        floor_cpu.append(_children_cpu() - before)
        scans.append(queueemo_scan(args.folder, jobs, args.model))
        scan_cpu.append(_children_cpu() - before - floor_cpu[-1])
        if args.baseline:
            baselines.append(queueemo_scan(args.folder, jobs, args.model, args.baseline)[0])
        loads.append(_load())
    floor = _median(floors)
    print(f"decode floor   {floor:7.1f} s  ({floor / hours:.1f} s per audio-hour; "
          f"{_median(floor_cpu):.1f} CPU-s)")
    wall = _median([run[0] for run in scans])
    rss, pss = max(run[1][0] for run in scans), max(run[1][1] for run in scans)
    print(f"queueemo scan  {wall:7.1f} s  ({wall / hours:.1f} s per audio-hour, "
          f"{len(files) / wall:.1f} tracks/s; {_median(scan_cpu):.1f} CPU-s)  {scans[-1][2]}")
    target = 2.0 if args.model == "v2" else 1.3
    print(f"ratio          {wall / floor:7.2f} × decode floor, {args.model} (target ≤ {target:g}); "
          f"CPU {_median(scan_cpu) / _median(floor_cpu):.2f} × the floor's; per run: "
          + " ".join(f"{s[0] / f:.2f}" for s, f in zip(scans, floors, strict=True)))
    if baselines:
        before = _median(baselines)
        print(f"baseline scan  {before:7.1f} s  ({args.baseline}): {before / floor:.2f} × decode floor; "
              "per run: " + " ".join(f"{b / f:.2f}" for b, f in zip(baselines, floors, strict=True)))
    print(f"load average   {' → '.join(loads)} (1 min, before and after each run)")
    start_up = _median([worker_start_up(args.model) for _ in range(args.repeat)])
    print(f"worker start   {start_up:7.1f} s  (one fresh process: interpreter, torch import, model load; "
          f"{jobs} start in parallel)")
    print(f"peak memory    {rss / 2**20:7.0f} MB RSS, {pss / 2**20:.0f} MB PSS, summed over the scan's "
          "process tree (target ≤ 1024)")

    if importlib.util.find_spec("bliss_audio") is None:
        print("bliss-rs       not measured: `pip install bliss-audio` to compare")
        return
    runs = [bliss(files, jobs) for _ in range(args.repeat)]
    taken, crashes = _median([run[0] for run in runs]), max(run[1] for run in runs)
    if crashes >= len(files):
        print(f"bliss-rs       crashed on every file ({crashes}/{len(files)}): this wheel does not "
              "run on this machine (e.g. built for other CPU instructions)")
        return
    print(f"bliss-rs       {taken:7.1f} s  ({taken / hours:.1f} s per audio-hour), crashed on "
          f"{crashes} files; queueemo takes {wall / taken:.2f} × bliss-rs (target ≤ 1)")


if __name__ == "__main__":
    main()
