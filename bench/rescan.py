"""Time the rescan of an unchanged library (≤ 5 s at 10,000 tracks, ≤ 30 s at 100,000), and of a few changes.

    python bench/rescan.py [--tracks 10000] [--repeat 3] [--jobs N] [--seed real|quick] [--few 3]
                           [--keep DIR]

How the library is made cheaply: 100 album folders of tiny WAV files (0.5 s of 8 kHz mono noise, 8 KB
each, 80 MB in all), every file with its own noise so every content hash differs, as in a real library.
The first scan fills the index. ``--seed quick`` (the default) runs that scan with an analyser that skips
decoding and returns a flat trajectory; ``--seed real`` decodes and runs the model on every file (about
ten minutes on two cores). Either way the index ends up as after a real scan: same rows, same model
version. Only the rescans are timed, as ``queueemo scan DIR`` in a fresh process, so the figure includes
interpreter start-up, opening the database and looking up the model version.

Then ``--few`` files are added and as many moved, and the rescan that analyses them is timed (real
model) two ways in the same run, alternating: as ``queueemo scan`` does it (in process, no pool) and
with a worker pool forced (``small_scans_in_process=False``, the baseline and the daemon's way).

``--keep DIR`` builds the files and the index in DIR once and reuses them on later runs (100,000 files
take minutes to write and to seed); the few-files rescans, which change the library, are skipped then.
"""

from __future__ import annotations

import argparse
import shutil
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


def _few_changes(music: Path, round_: int, few: int) -> None:
    """Add ``few`` new files and move ``few`` existing ones (a different set each round)."""
    rng = np.random.default_rng(1000 + round_)
    album = music / f"new{round_:02d}"
    album.mkdir()
    for index in range(few):
        samples = (rng.standard_normal(4000) * 3000).astype("<i2")
        with wave.open(str(album / f"new {index}.wav"), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            out.writeframes(samples.tobytes())
    for index, path in enumerate(sorted((music / f"album{round_:04d}").glob("*.wav"))[:few]):
        path.rename(album / f"moved {index}.wav")


_FORCED_POOL = """
import sys
from queueemo.library import ScanOptions, open_library, scan
library = open_library(sys.argv[2])
print(scan(library, [sys.argv[1]], ScanOptions(small_scans_in_process=False)).line())
"""


def time_few(music: Path, url: str, repeat: int, few: int) -> None:
    """Median wall time of a rescan with ``few`` new and ``few`` moved files: in process vs a pool."""
    commands = {
        "in process (queueemo scan)": [sys.executable, "-c", "from queueemo.cli import main; main()",
                                       "scan", str(music), "--db", url],
        "worker pool (baseline)": [sys.executable, "-c", _FORCED_POOL, str(music), url],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    lines: dict[str, str] = {}
    round_ = 0
    for _ in range(repeat):
        for name, command in commands.items():
            _few_changes(music, round_, few)
            round_ += 1
            started = time.monotonic()
            result = subprocess.run(command, capture_output=True, text=True, check=True)
            times[name].append(time.monotonic() - started)
            lines[name] = result.stdout.strip()
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        print(f"rescan with {few} new + {few} moved, {name} ({lines[name]}): "
              f"median {medians[name]:.2f} s ({', '.join(f'{t:.2f}' for t in values)})")
    baseline = medians["worker pool (baseline)"]
    print(f"few-files rescan: in process / pool = {medians['in process (queueemo scan)'] / baseline:.2f}")


def flat_trajectory(path: str, *, observe: object = None) -> np.ndarray:
    """The quick seed's analyser: one neutral window, no decoding."""
    return np.zeros((1, 2), dtype=np.float32)


def _seed(music: Path, url: str, tracks: int, seed: str, jobs: int) -> None:
    """Write the files and fill the index (the first scan)."""
    started = time.monotonic()
    make_library(music, tracks)
    print(f"generated {tracks} files in {time.monotonic() - started:.1f} s", flush=True)
    options = ScanOptions(jobs=jobs)
    if seed == "quick":
        options = ScanOptions(jobs=1, analyse=flat_trajectory, model_version=current_model_version())
    with open_library(url) as library:
        started = time.monotonic()
        first = scan(library, [music], options)
    print(f"first scan ({seed} seed): {first.line()} in {time.monotonic() - started:.1f} s", flush=True)


def _target(tracks: int) -> str:
    return "≤ 30 s at 100,000 tracks" if tracks > 10_000 else "≤ 5 s at 10,000 tracks"


def _run(music: Path, url: str, args: argparse.Namespace) -> None:
    library = open_library(url)
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
          f"of {args.repeat} ({', '.join(f'{t:.2f}' for t in times)}); target {_target(args.tracks)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=0, help="workers for a real seed (0 = all cores)")
    parser.add_argument("--seed", choices=("quick", "real"), default="quick")
    parser.add_argument("--few", type=int, default=3, help="new and moved files per few-files rescan")
    parser.add_argument("--keep", type=Path, help="build the library here once and reuse it (no --few)")
    args = parser.parse_args()

    if args.keep:
        keep = args.keep.resolve()
        music, url = keep / "music", f"sqlite:///{keep}/library.sqlite3"
        if not (keep / "seeded").exists():
            shutil.rmtree(keep, ignore_errors=True)
            keep.mkdir(parents=True)
            _seed(music, url, args.tracks, args.seed, args.jobs)
            (keep / "seeded").write_text(f"{args.tracks}\n")
        elif int((keep / "seeded").read_text()) != args.tracks:
            raise SystemExit(f"{keep} holds another library size; pick another --keep folder")
        else:
            print(f"reusing the {args.tracks} files and index in {keep}")
        _run(music, url, args)
        return
    with tempfile.TemporaryDirectory(prefix="queueemo-rescan-") as scratch:
        music, url = Path(scratch) / "music", f"sqlite:///{scratch}/library.sqlite3"
        _seed(music, url, args.tracks, args.seed, args.jobs)
        _run(music, url, args)
        if args.few:
            time_few(music, url, args.repeat, args.few)


if __name__ == "__main__":
    main()
