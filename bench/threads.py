"""Analysis time of one long track with torch on one thread against torch's default thread count.

    python bench/threads.py [--seconds 410] [--repeat 3]

A synthetic track (a pulsed tone with noise) of ``--seconds`` is written once; ``queueemo.analyze``
(which runs torch on ``torch_threads.ANALYSIS_THREADS``) is timed against ``analyze_file`` with torch
left at its default (one thread per core), alternating, in the same process after a warm-up.
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

import queueemo
from queueemo.emotion.inference import analyze_file, load_clip_model
from queueemo.torch_threads import ANALYSIS_THREADS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=410.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    default_threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory(prefix="queueemo-threads-") as scratch:
        path = Path(scratch) / "long.flac"
        t = np.arange(int(args.seconds * 44_100)) / 44_100
        tone = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sign(np.sin(2 * np.pi * 2 * t))) / 2
        noise = 0.05 * np.random.default_rng(0).standard_normal(len(t))
        soundfile.write(str(path), (tone + noise).astype(np.float32), 44_100)
        load_clip_model()
        queueemo.analyze(path)  # warm-up
        times: dict[str, list[float]] = {"analysis threads": [], "torch default": []}
        for _ in range(args.repeat):
            started = time.perf_counter()
            queueemo.analyze(path)
            times["analysis threads"].append(time.perf_counter() - started)
            torch.set_num_threads(default_threads)
            started = time.perf_counter()
            analyze_file(path)
            times["torch default"].append(time.perf_counter() - started)
    ours, default = (statistics.median(times[name]) for name in ("analysis threads", "torch default"))
    print(f"{args.seconds:.0f}-s track: {ANALYSIS_THREADS} thread(s) median {ours:.2f} s; "
          f"torch default ({default_threads} threads) median {default:.2f} s; ratio {default / ours:.1f}x")


if __name__ == "__main__":
    main()
