"""How fast a scan stops: SIGTERM → exit, and ``kill -9`` of the scan → its workers gone.

    python bench/stop.py [--repeat 3] [--jobs 2]

Generates 12 twenty-second FLAC files, starts ``queueemo scan --jobs N`` on them in a fresh index,
waits until every worker has set itself up (torch loaded) and is analysing, then either sends SIGTERM
(timed until the scan exits and until its workers are gone) or SIGKILL to the scan alone (timed until
its orphaned workers are gone). Medians of --repeat runs of each.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile


def _direct_children(pid: int) -> list[tuple[int, bytes]]:
    """Live children of ``pid`` with their command lines."""
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                kids.append((int(entry.name), command))
    return kids


def _children(pid: int) -> list[int]:
    """The analysis workers of ``pid``: forked by its forkserver child, or spawned children."""
    workers = []
    for kid, command in _direct_children(pid):
        if b"forkserver" in command:
            workers += [worker for worker, _ in _direct_children(kid)]
        elif b"spawn_main" in command:
            workers.append(kid)
    return workers


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _ready(pid: int) -> bool:
    try:
        return b"libtorch" in Path(f"/proc/{pid}/maps").read_bytes()
    except OSError:
        return False


def stop_once(music: Path, scratch: Path, jobs: int, how: signal.Signals, run: int) -> tuple[float, float]:
    """(seconds to the scan's exit, seconds until its workers are gone) after sending ``how``."""
    url = f"sqlite:///{scratch}/stop{run}.sqlite3"
    command = [sys.executable, "-c", "from queueemo.cli import main; main()", "scan", str(music),
               "--jobs", str(jobs), "--db", url]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    workers: list[int] = []
    while len(workers) < jobs or not all(map(_ready, workers)):
        workers = _children(child.pid)
        time.sleep(0.05)
    time.sleep(1.0)  # analysing by now
    started = time.monotonic()
    child.send_signal(how)
    child.wait()
    exited = time.monotonic() - started
    while any(map(_alive, workers)):
        time.sleep(0.01)
    return exited, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="queueemo-stop-") as folder:
        scratch = Path(folder)
        music = scratch / "music"
        music.mkdir()
        rng = np.random.default_rng(0)
        for index in range(12):
            signal_ = 0.3 * np.sin(2 * np.pi * (150 + 40 * index) * np.arange(20 * 44_100) / 44_100)
            signal_ += 0.05 * rng.standard_normal(len(signal_))
            soundfile.write(str(music / f"{index:02d}.flac"), signal_.astype(np.float32), 44_100)
        runs = {how: [stop_once(music, scratch, args.jobs, how, n + 10 * how)
                      for n in range(args.repeat)] for how in (signal.SIGTERM, signal.SIGKILL)}
    for how, results in runs.items():
        exits, gone = zip(*results, strict=True)
        print(f"{how.name}: scan exited after median {statistics.median(exits):.2f} s, workers gone after "
              f"median {statistics.median(gone):.2f} s ({', '.join(f'{g:.2f}' for g in gone)})")


if __name__ == "__main__":
    main()
