"""What audible boundaries add to a scan: their cost against the analysis of the same decoded audio.

    python bench/boundaries.py FILE_OR_FOLDER... [--repeat 3] [--model v2|seed] [--limit N]

Each file is analysed as the scan does it (``Backend.analyze``: decode + model, the default model
unless ``--model``), keeping the decoded blocks it hands to its observer; then
``BoundaryAccumulator.add`` + ``result`` (loudness, brightness, onsets) is timed over those same
blocks. Both are timed in the same run; the share printed is the boundaries' cost against the scan's
own analysis of the file. Target: ≤ 5 %.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from _queuebench import REPO  # noqa: F401  (puts this checkout on sys.path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--model", default=None, help="clip model backend (default: the shipped default)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N files")
    args = parser.parse_args()

    from queueemo.audio import is_audio_path
    from queueemo.boundaries import BoundaryAccumulator
    from queueemo.emotion.backends import get_backend

    files = [p for root in args.paths for p in ([root] if root.is_file() else sorted(root.rglob("*")))
             if p.is_file() and is_audio_path(p)]
    files = files[: args.limit] if args.limit else files
    backend = get_backend(args.model)
    backend.warm_up()
    analysis, boundary = [], []
    seconds = 0.0
    for path in files:
        for _ in range(args.repeat):
            blocks = []
            started = time.perf_counter()
            backend.analyze(path, observe=lambda block, rate: blocks.append((block, rate)))  # noqa: B023
            analysis.append(time.perf_counter() - started)
            started = time.perf_counter()
            acc = BoundaryAccumulator()
            for block, rate in blocks:
                acc.add(block, rate)
            acc.result()
            boundary.append(time.perf_counter() - started)
        seconds += sum(len(b) for b, _ in blocks) * 0.5
    a, b = sum(analysis), sum(boundary)
    print(f"{len(files)} files, {seconds / 60:.1f} min of audio, model {backend.version}, "
          f"{args.repeat} repeats")
    print(f"  analysis (decode + model): {a:.2f} s   boundaries: {b:.2f} s   "
          f"share {100 * b / a:.1f} % (target ≤ 5 %)")
    ratios = [y / x for x, y in zip(analysis, boundary, strict=True)]
    print(f"  per file, median share {100 * statistics.median(ratios):.1f} %")


if __name__ == "__main__":
    main()
