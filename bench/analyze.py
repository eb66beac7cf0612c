"""Analysis speed against the decode floor, and peak memory on a 2-hour file.

    python bench/analyze.py DIR [--model v2|v2-lite|seed] [--repeat 3] [--long-hours 2] [--check]

For the same audio files, single process:
  * decode floor: ffmpeg decoding every file to mono float at the model's sample rate (16 kHz for v2,
    44.1 kHz for seed), to a pipe that is read and dropped, as the analysis reads it;
  * queueemo: `queueemo.analyze` on every file (decode + front end + clip model), torch on one thread;
and their ratio (targets: v2 ≤ 3, seed ≤ 1.5). Medians of --repeat runs. With --long-hours, a synthetic
file of that length is analysed in a child process and its peak RSS reported (target ≤ 500 MB for 2 hours).
With --check (v2), every file is also embedded with musicnn exactly as converted (no compaction) and
the largest differences of the embeddings and of clip_v2's arousal/valence are printed; the run fails
if either exceeds the tolerance the analysis promises (``CHECK_TOLERANCE``).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from queueemo.audio import decode_windows, is_audio_path

SAMPLE_RATES = {"v2": 16_000, "v2-lite": 16_000, "seed": 44_100}
# Largest |Δ| allowed between the analysed and the as-converted network, on embeddings and on outputs.
CHECK_TOLERANCE = 0.01


def decode_floor(files: list[Path], sample_rate: int) -> float:
    started = time.perf_counter()
    for path in files:
        command = ["ffmpeg", "-nostdin", "-v", "quiet", "-i", f"file:{path}", "-vn", "-ac", "1",
                   "-ar", str(sample_rate), "-f", "f32le", "pipe:1"]
        with subprocess.Popen(command, stdout=subprocess.PIPE) as process:
            assert process.stdout is not None
            while process.stdout.read(1 << 20):
                pass
    return time.perf_counter() - started


def analysis(files: list[Path], model: str) -> tuple[float, float]:
    """Seconds to analyse all files, and the audio seconds they hold."""
    from queueemo.emotion.backends import get_backend

    analyze_file = get_backend(model).analyze
    started = time.perf_counter()
    audio_seconds = sum(len(analyze_file(path)) * 0.5 for path in files)
    return time.perf_counter() - started, audio_seconds


def equality_check(files: list[Path]) -> tuple[float, float]:
    """Largest |Δ embedding| and |Δ arousal/valence| of the analysed network against the full one."""
    import numpy as np
    import torch

    from queueemo.emotion.descriptors import DescriptorStream
    from queueemo.emotion.embedding import (
        FRAMES_PER_WINDOW,
        FrontEnd,
        embed_stream,
        load_front_end,
        load_full_network,
    )
    from queueemo.emotion.inference import predict_features
    from queueemo.emotion.inference_v2 import load_clip_v2

    compact = load_front_end()
    full = FrontEnd(load_full_network()[0], compact.mel_basis, compact.window)
    model, _ = load_clip_v2()
    worst_embedding = worst_output = 0.0
    for path in files:
        stream = DescriptorStream()  # the descriptors do not depend on the network: computed once
        with torch.inference_mode():
            ours, exact = (embed_stream(front, decode_windows(path, sample_rate=SAMPLE_RATES["v2"]),
                                        descriptors=stream if front is compact else None).numpy()
                           for front in (compact, full))
        worst_embedding = max(worst_embedding, float(np.abs(ours - exact).max()))
        described = stream.windows(len(ours), FRAMES_PER_WINDOW)
        outputs = (predict_features(model, np.hstack([ours, described]))
                   - predict_features(model, np.hstack([exact, described])))
        worst_output = max(worst_output, float(np.abs(outputs).max()))
    return worst_embedding, worst_output


def long_file_peak_rss(hours: float, workdir: Path, model: str) -> float:
    """Peak RSS (MB) of a child process analysing a synthetic file of ``hours``."""
    path = workdir / "long.opus"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
         f"sine=frequency=220:beep_factor=4:duration={hours * 3600}", "-ac", "1", "-c:a", "libopus",
         "-b:a", "24k", str(path)],
        check=True,
    )
    # The child reports its own peak: RUSAGE_CHILDREN would also count children forked from this
    # (by then large) process before they exec ffmpeg.
    # queueemo.analyze sets the analysis threads (and imports torch only for a backend that uses it).
    code = ("import resource, sys, queueemo; "
            "t = queueemo.analyze(sys.argv[1], sys.argv[2]); print(len(t), 'windows', file=sys.stderr); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    child = subprocess.run([sys.executable, "-c", code, str(path), model], check=True, capture_output=True,
                           text=True)
    return int(child.stdout.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--long-hours", type=float, default=0.0)
    parser.add_argument("--model", choices=sorted(SAMPLE_RATES), default="v2")
    parser.add_argument("--check", action="store_true", help="v2: compare with the uncompacted network")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    files = sorted(p for p in args.folder.rglob("*") if p.is_file() and is_audio_path(p))
    if not files:
        sys.exit(f"no audio files under {args.folder}")
    analysis(files[:1], args.model)  # load the model and warm caches outside the timing
    floors, runs, audio_seconds = [], [], 0.0
    rate = SAMPLE_RATES[args.model]
    for _ in range(args.repeat):
        floors.append(decode_floor(files, rate))
        seconds, audio_seconds = analysis(files, args.model)
        runs.append(seconds)
    floor, full = statistics.median(floors), statistics.median(runs)
    hours = audio_seconds / 3600
    print(f"files: {len(files)}, audio: {hours:.2f} h, repeats: {args.repeat} (medians)")
    for label, seconds in ((f"decode floor (ffmpeg → {rate / 1000:g} kHz mono f32)", floor),
                           (f"queueemo analysis, {args.model} (1 thread)", full)):
        print(f"{label:<42} {seconds:7.2f} s  = {seconds / hours:5.1f} s per audio-hour")
    target = 1.5 if args.model == "seed" else 3.0
    print(f"ratio analysis / decode floor: {full / floor:.2f}  (target ≤ {target:g})")
    # Before the check: a child forked from this process once it is large reports that size as its
    # own peak (Linux keeps the high-water mark across exec).
    if args.long_hours:
        with tempfile.TemporaryDirectory() as workdir:
            peak = long_file_peak_rss(args.long_hours, Path(workdir), args.model)
        print(f"peak RSS analysing a {args.long_hours:g} h file: {peak:.0f} MB  (target ≤ 500 MB)")
    if args.check and args.model == "v2":
        embedding, output = equality_check(files)
        print(f"max |Δ embedding| {embedding:.2g}, max |Δ arousal/valence| {output:.2g} against the "
              f"network as converted (tolerance {CHECK_TOLERANCE:g})")
        if max(embedding, output) > CHECK_TOLERANCE:
            sys.exit("analysis differs from the converted network beyond the tolerance")


if __name__ == "__main__":
    main()
