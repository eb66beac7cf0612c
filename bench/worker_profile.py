"""Where a scan worker's CPU goes: start-up, per file, per stage of the v2 analysis.

    python bench/worker_profile.py DIR [--repeat 3] [--model v2-lite]

A worker's life, measured the way a worker lives it (one torch thread, one process):

- **start-up**, in a fresh interpreter per step (medians of --repeat): the interpreter, ``import torch``,
  the worker's imports (``queueemo.library.analysis`` and what it pulls in), the model load (warm-up);
  CPU seconds of the process (all threads);
- **per file**, for every audio file under DIR analysed as a worker does (``analyse_one``): CPU of this
  process's main thread split by stage (tags, boundaries, mel, timbral / temporal convolutions, mid end,
  pooling, dense layers, clip LSTM, the rest = window assembly and waiting overhead), the pipe-reading
  thread, ffmpeg's decode (its children's CPU) and pickling the outcome (what IPC costs a worker);
  per audio-hour, with the ratio (everything the worker does besides decoding) / (ffmpeg's decode):
  with one worker per core, full scan / decode floor ≥ 1 + that ratio.

Stages are timed by wrapping the functions (thread CPU time); wrapping costs a few µs per call.
"""

from __future__ import annotations

import argparse
import json
import pickle
import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

_START_UP = """
import json, time
t = {"interpreter": time.process_time()}
import torch
t["import torch"] = time.process_time()
import queueemo.library.analysis as analysis
t["worker imports"] = time.process_time()
analysis.set_analysis_threads()
analysis.ModelAnalyser(MODEL).warm_up()
t["model load"] = time.process_time()
print(json.dumps(t))
"""


def start_up(repeat: int, model: str = "v2") -> dict[str, float]:
    """CPU seconds of each start-up step of a fresh worker interpreter (medians)."""
    runs = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", _START_UP.replace("MODEL", repr(model))], check=True,
                             capture_output=True, text=True)
        marks = json.loads(out.stdout)
        steps, previous = {}, 0.0
        for name, value in marks.items():
            steps[name] = value - previous
            previous = value
        runs.append(steps)
    return {name: statistics.median(run[name] for run in runs) for name in runs[0]}


class Stages:
    """Thread-CPU seconds spent inside wrapped functions, by stage, exclusive of nested wrapped stages."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._nested: list[float] = []  # per open stage: time its nested stages took

    def wrap(self, owner: object, attribute: str, stage: str) -> None:
        original = getattr(owner, attribute)

        def timed(*args: object, **kwargs: object) -> object:
            self._nested.append(0.0)
            started = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                taken = time.thread_time() - started
                self.seconds[stage] += taken - self._nested.pop()
                if self._nested:
                    self._nested[-1] += taken

        setattr(owner, attribute, timed)


def _instrument(stages: Stages, model: str = "v2") -> Callable[[], None]:
    """Wrap the v2 (or v2-lite) path's stages; returns the model's warm-up."""
    from queueemo import boundaries
    from queueemo.emotion import embedding, inference_v2, musicnn, student
    from queueemo.library import analysis

    stages.wrap(analysis, "read_tags", "tags")
    stages.wrap(boundaries.BoundaryAccumulator, "add", "boundaries")
    stages.wrap(embedding, "mel_power", "mel")
    stages.wrap(embedding, "log_compress", "mel")
    stages.wrap(musicnn._TemporalBranch, "forward", "temporal convolutions")
    stages.wrap(musicnn._FrontBranch, "forward", "timbral convolutions")
    stages.wrap(embedding, "_pool_patches", "pooling")
    stages.wrap(musicnn.CompactMusicnn, "embed_varying", "dense layers")
    stages.wrap(musicnn.CompactMusicnn, "varying_features", "mid end and layout")
    stages.wrap(student.StudentNetwork, "coarse_features", "student network")
    stages.wrap(student.StudentNetwork, "varying_features", "student repeat to frames")
    stages.wrap(student.StudentNetwork, "embed_varying", "dense layers")
    stages.wrap(inference_v2, "predict_features", "clip LSTM")
    return analysis.ModelAnalyser(model).warm_up


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def per_file(files: list[Path], model: str = "v2") -> tuple[dict[str, float], float, float]:
    """CPU seconds by stage over all files, and the audio seconds they hold, and wall seconds."""
    from queueemo.library.analysis import ModelAnalyser, analyse_one, set_analysis_threads

    set_analysis_threads()
    stages = Stages()
    analyser = ModelAnalyser(model)
    _instrument(stages, model)()
    ffmpeg_before = _children_cpu()
    process_before, thread_before, wall_before = time.process_time(), time.thread_time(), time.perf_counter()
    audio = pickling = 0.0
    for number, path in enumerate(files):
        outcome = analyse_one(number, str(path), analyser)
        started = time.thread_time()
        pickle.dumps(outcome)
        pickling += time.thread_time() - started
        audio += 0.5 * (len(outcome.trajectory) if outcome.trajectory is not None else 0)
    wall = time.perf_counter() - wall_before
    main_thread = time.thread_time() - thread_before
    other_threads = time.process_time() - process_before - main_thread
    ffmpeg = _children_cpu() - ffmpeg_before
    seconds = dict(stages.seconds)
    seconds["rest of the main thread"] = main_thread - sum(seconds.values()) - pickling
    seconds["pickling the outcome"] = pickling
    seconds["pipe-reading thread"] = other_threads
    seconds["ffmpeg decode (children)"] = ffmpeg
    return seconds, audio, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--repeat", type=int, default=3, help="start-up runs (median printed)")
    parser.add_argument("--model", default="v2", help="clip-model backend (v2 or v2-lite)")
    args = parser.parse_args()
    from queueemo.audio import is_audio_path

    files = sorted(p for p in args.folder.rglob("*") if p.is_file() and is_audio_path(p))
    if not files:
        sys.exit(f"no audio files under {args.folder}")
    print(f"load average at start: {Path('/proc/loadavg').read_text().split()[0]}")
    steps = start_up(args.repeat, args.model)
    print(f"worker start-up, CPU s (median of {args.repeat} fresh interpreters): "
          + ", ".join(f"{name} {value:.2f}" for name, value in steps.items())
          + f"; total {sum(steps.values()):.2f}")
    seconds, audio, wall = per_file(files, args.model)
    hours = audio / 3600
    print(f"{len(files)} files, {hours:.2f} audio-hours, {wall:.1f} s wall; CPU s per audio-hour:")
    decode = seconds.pop("ffmpeg decode (children)")
    for name, value in sorted(seconds.items(), key=lambda item: -item[1]):
        print(f"  {name:<28} {value / hours:6.2f}")
    rest = sum(seconds.values())
    print(f"  {'= worker besides decoding':<28} {rest / hours:6.2f}")
    print(f"  {'ffmpeg decode (children)':<28} {decode / hours:6.2f}")
    per_worker = sum(steps.values())
    print(f"ratio (worker besides decoding) / decode: {rest / decode:.2f}  (full scan / floor ≥ 1 + that; "
          f"+ start-up {per_worker:.1f} CPU-s per worker, {per_worker / (decode / hours * hours) :.2f} of "
          "this set's decode)")


if __name__ == "__main__":
    main()
