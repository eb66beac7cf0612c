"""Time the rescan of an unchanged library of 10,000 tracks (target: ≤ 5 s).

    python bench/rescan.py [--tracks 10000] [--repeat 3] [--jobs N] [--seed real|quick]

How the library is made cheaply: 100 album folders of tiny WAV files (0.5 s of 8 kHz mono noise, 8 KB
each, 80 MB in all), every file with its own noise so every content hash differs, as in a real library.
The first scan fills the index. ``--seed quick`` (the default) runs that scan with an analyser that skips
decoding and returns a flat trajectory; ``--seed real`` decodes and runs the model on every file (about
ten minutes on two cores). Either way the index ends up as after a real scan: same rows, same model
version. Only the rescans are timed, as ``queueemo scan DIR`` in a fresh process, so the figure includes
interpreter start-up, opening the database and looking up the model version.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

from queueemo.library import ScanOptions, open_library, scan
from queueemo.library.analysis import current_model_version


def make_library(folder: Path, tracks: int) -> None:
    """``tracks`` distinct tiny WAV files in folders of 100."""
    rng = np.random.default_rng(0)
    for index in range(tracks):
        album = folder / f"album{index // 100:04d}"
        album.mkdir(parents=True, exist_ok=True)
        samples = (rng.standard_normal(4000) * 3000).astype("<i2")
        with wave.open(str(album / f"{index % 100:02d} track {index}.wav"), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            out.writeframes(samples.tobytes())


def flat_trajectory(path: str) -> np.ndarray:
    """The quick seed's analyser: one neutral window, no decoding."""
    return np.zeros((1, 2), dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=0, help="workers for a real seed (0 = all cores)")
    parser.add_argument("--seed", choices=("quick", "real"), default="quick")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="queueemo-rescan-") as scratch:
        music, url = Path(scratch) / "music", f"sqlite:///{scratch}/library.sqlite3"
        started = time.monotonic()
        make_library(music, args.tracks)
        print(f"generated {args.tracks} files in {time.monotonic() - started:.1f} s", flush=True)

        options = ScanOptions(jobs=args.jobs)
        if args.seed == "quick":
            options = ScanOptions(jobs=1, analyse=flat_trajectory, model_version=current_model_version())
        library = open_library(url)
        started = time.monotonic()
        first = scan(library, [music], options)
        print(f"first scan ({args.seed} seed): {first.line()} in {time.monotonic() - started:.1f} s")

        started = time.monotonic()
        again = scan(library, [music], ScanOptions(jobs=1))
        print(f"rescan in process: {again.line()} in {time.monotonic() - started:.2f} s")
        library.close()

        command = [sys.executable, "-c", "from queueemo.cli import main; main()", "scan", str(music),
                   "--db", url]
        times = []
        for _ in range(args.repeat):
            started = time.monotonic()
            result = subprocess.run(command, capture_output=True, text=True, check=True)
            times.append(time.monotonic() - started)
        print(f"rescan `queueemo scan` ({result.stdout.strip()}): median {statistics.median(times):.2f} s "
              f"of {args.repeat} ({', '.join(f'{t:.2f}' for t in times)}); target ≤ 5 s")


if __name__ == "__main__":
    main()
