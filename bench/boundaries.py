"""What audible boundaries add to a scan: their cost against the analysis of the same decoded audio.

    python bench/boundaries.py FILE_OR_FOLDER... [--repeat 3]

Each file is decoded once into memory; then, timed separately over the same blocks, (a) the emotion
analysis as the scan does it (log-mel + clip model) and (b) ``BoundaryAccumulator.add`` + ``result``.
Decoding is left out of both, so the share printed is an upper bound of the cost in a real scan
(which also decodes). Target: ≤ 5 %.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from _queuebench import REPO  # noqa: F401  (puts this checkout on sys.path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from queueemo.audio import SAMPLE_RATE, decode_windows, is_audio_path, log_mel
    from queueemo.boundaries import BoundaryAccumulator
    from queueemo.emotion.inference import load_clip_model, predict_features

    files = [p for root in args.paths for p in ([root] if root.is_file() else sorted(root.rglob("*")))
             if p.is_file() and is_audio_path(p)]
    model, version = load_clip_model()
    analysis, boundary = [], []
    seconds = 0.0
    for path in files:
        blocks = list(decode_windows(path))
        seconds += sum(len(b) for b in blocks) * 0.5
        for _ in range(args.repeat):
            started = time.perf_counter()
            predict_features(model, np.concatenate([log_mel(b) for b in blocks]))
            analysis.append(time.perf_counter() - started)
            started = time.perf_counter()
            acc = BoundaryAccumulator()
            for block in blocks:
                acc.add(block, SAMPLE_RATE)
            acc.result()
            boundary.append(time.perf_counter() - started)
    a, b = sum(analysis), sum(boundary)
    print(f"{len(files)} files, {seconds / 60:.1f} min of audio, model {version}, {args.repeat} repeats")
    print(f"  analysis (log-mel + model): {a:.2f} s   boundaries: {b:.2f} s   "
          f"share {100 * b / a:.1f} % (target ≤ 5 %)")
    ratios = [y / x for x, y in zip(analysis, boundary, strict=True)]
    print(f"  per file, median share {100 * statistics.median(ratios):.1f} %")


if __name__ == "__main__":
    main()
