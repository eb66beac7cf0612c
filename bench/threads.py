"""Analysis time of one long track with torch on one thread against torch's default thread count.

    python bench/threads.py [--seconds 410] [--repeat 3] [--model v2|seed]

A synthetic track (a pulsed tone with noise) of ``--seconds`` is written once; the same backend's
``analyze`` is timed with torch on ``threads.ANALYSIS_THREADS`` (what ``queueemo.analyze`` and
scans use) and with torch left at its default (one thread per core), alternating, in the same
process after a warm-up.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

from queueemo.emotion.backends import BACKEND_NAMES, get_backend
from queueemo.threads import ANALYSIS_THREADS, analysis_threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=410.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--model", choices=BACKEND_NAMES, default=BACKEND_NAMES[0])
    args = parser.parse_args()
    default_threads = torch.get_num_threads()
    backend = get_backend(args.model)
    with tempfile.TemporaryDirectory(prefix="queueemo-threads-") as scratch:
        path = Path(scratch) / "long.flac"
        t = np.arange(int(args.seconds * 44_100)) / 44_100
        tone = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sign(np.sin(2 * np.pi * 2 * t))) / 2
        noise = 0.05 * np.random.default_rng(0).standard_normal(len(t))
        soundfile.write(str(path), (tone + noise).astype(np.float32), 44_100)
        backend.warm_up()
        backend.analyze(path)  # warm-up
        times: dict[str, list[float]] = {"analysis threads": [], "torch default": []}
        for _ in range(args.repeat):
            with analysis_threads():
                started = time.perf_counter()
                backend.analyze(path)
                times["analysis threads"].append(time.perf_counter() - started)
            torch.set_num_threads(default_threads)
            started = time.perf_counter()
            backend.analyze(path)
            times["torch default"].append(time.perf_counter() - started)
    ours, default = (statistics.median(times[name]) for name in ("analysis threads", "torch default"))
    print(f"{args.model}, {args.seconds:.0f}-s track: {ANALYSIS_THREADS} thread(s) median {ours:.2f} s; "
          f"torch default ({default_threads} threads) median {default:.2f} s; ratio {default / ours:.1f}x")


if __name__ == "__main__":
    main()
