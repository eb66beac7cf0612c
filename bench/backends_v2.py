"""v2's compact musicnn on other execution backends: torch.compile, ONNX Runtime, dynamic int8.

    python bench/backends_v2.py FILE... [--repeat 5] [--only compile,onnx,int8] [--inductor-cache DIR]

Single process, one thread. Every file is decoded once at 16 kHz and its mel power kept; then, per
repeat and in an order that rotates so every backend sees the same load, each backend embeds every
file through ``patch_stream.embed_stream`` exactly as analysis does, and the CPU seconds spent inside
the network's two calls (``varying_features``: the convolutional front and mid end over a pass of
frames; ``embed_varying``: the pooled vectors through the dense layers) are summed. Backends:

* **eager**: ``CompactMusicnn`` as analysis runs it today (the baseline);
* **compile**: ``torch.compile`` (inductor, default mode) of both calls; the time axis varies between
  passes, so it recompiles with a dynamic time axis on the second shape (``TORCHINDUCTOR_FREEZING=1`` in
  the environment compiles with the weights as constants);
* **onnx**: both calls exported with ``torch.onnx.export`` (dynamic time axis / window count) and run by
  ONNX Runtime (CPUExecutionProvider, one intra-op thread, all graph optimisations);
* **int8**: ``torch.ao.quantization.quantize_dynamic`` of the linear (dense) layer; the front end as eager.

Prints per backend: CPU-s per audio-hour (median over repeats) for the network and its ratio to eager
in the same repeat (median of the per-repeat ratios), max |Δ embedding| and max |Δ arousal/valence|
(``clip_v2`` on embeddings + descriptors) against eager, and start-up costs: how much longer its first
pass over the files took than its median pass (torch.compile compiles then, in this process, with an
empty inductor cache unless --inductor-cache names a used one), ONNX export and session creation, and
``import onnxruntime`` after torch in a fresh interpreter (median of 3). The load average is printed at
the start, after every repeat and at the end.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

BACKENDS = ("eager", "compile", "onnx", "int8")
_ONNX_IMPORT = ("import time, torch; t0, c0 = time.perf_counter(), time.process_time(); "
                "import onnxruntime; print(time.perf_counter() - t0, time.process_time() - c0)")


def load_average() -> str:
    """The 1-minute load average."""
    return Path("/proc/loadavg").read_text().split()[0]


@dataclass
class Track:
    """A decoded file: its mel power in the chunks analysis sees, and its window descriptors."""

    chunks: list[tuple[np.ndarray, int]]
    descriptors: np.ndarray


@dataclass
class Timed:
    """A patch network whose two calls go to a backend, with the CPU seconds spent in each."""

    features: Callable[[np.ndarray], np.ndarray]
    dense: Callable[[np.ndarray, np.ndarray], np.ndarray]
    receptive_margin: int
    stride: int
    embedding_size: int = 200
    seconds: dict[str, float] = field(default_factory=lambda: {"features": 0.0, "dense": 0.0})

    def varying_features(self, log_mel: np.ndarray) -> np.ndarray:
        started = time.process_time()
        out = self.features(log_mel)
        self.seconds["features"] += time.process_time() - started
        return out

    def embed_varying(self, maximum: np.ndarray, mean: np.ndarray) -> np.ndarray:
        started = time.process_time()
        out = self.dense(maximum, mean)
        self.seconds["dense"] += time.process_time() - started
        return out


def decode(files: list[Path]) -> list[Track]:
    """Every file decoded at 16 kHz into the mel chunks analysis streams, with its descriptors."""
    from queueemo.audio import decode_windows
    from queueemo.emotion.descriptors import DescriptorStream
    from queueemo.emotion.embedding import iter_mel, load_front_end
    from queueemo.emotion.musicnn_input import FRAMES_PER_WINDOW, SAMPLE_RATE

    front = load_front_end()
    tracks = []
    for path in files:
        stream = DescriptorStream()
        chunks = []
        for mel, n_windows in iter_mel(front, decode_windows(path, sample_rate=SAMPLE_RATE)):
            stream.add(mel)
            chunks.append((mel.numpy(), n_windows))
        tracks.append(Track(chunks, stream.windows(chunks[-1][1], FRAMES_PER_WINDOW)))
    return tracks


def torch_calls(varying_features: Callable, embed_varying: Callable) -> tuple[Callable, Callable]:
    """A torch network's ``varying_features`` and ``embed_varying``, on numpy arrays."""
    import torch

    def features(log_mel: np.ndarray) -> np.ndarray:
        return varying_features(torch.from_numpy(log_mel)[None])[0].numpy()

    def dense(maximum: np.ndarray, mean: np.ndarray) -> np.ndarray:
        return embed_varying(torch.from_numpy(maximum), torch.from_numpy(mean)).numpy()

    return features, dense


def onnx_calls(network, folder: Path) -> tuple[Callable, Callable, dict[str, float]]:
    """Both calls exported to ONNX and run by ONNX Runtime on one thread; export and session seconds."""
    import torch
    from torch import nn

    class Features(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(self, mel: torch.Tensor) -> torch.Tensor:
            return self.network.varying_features(mel)

    class Dense(Features):
        def forward(self, maximum: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
            return self.network.embed_varying(maximum, mean)

    costs = {}
    started = time.perf_counter()
    frames, windows = torch.export.Dim("frames", min=8), torch.export.Dim("windows", min=1)
    torch.onnx.export(Features(), (torch.zeros(1, 4397, 96),), folder / "features.onnx", dynamo=True,
                      input_names=["mel"], dynamic_shapes={"mel": {1: frames}}, verbose=False)
    torch.onnx.export(Dense(), (torch.zeros(128, 256), torch.zeros(128, 256)), folder / "dense.onnx",
                      dynamo=True, input_names=["maximum", "mean"],
                      dynamic_shapes={"maximum": {0: windows}, "mean": {0: windows}}, verbose=False)
    costs["export s"] = time.perf_counter() - started
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    started = time.perf_counter()
    sessions = [ort.InferenceSession(str(folder / name), options, providers=["CPUExecutionProvider"])
                for name in ("features.onnx", "dense.onnx")]
    costs["sessions s"] = time.perf_counter() - started
    features_session, dense_session = sessions

    def features(log_mel: np.ndarray) -> np.ndarray:
        return features_session.run(None, {"mel": log_mel[None]})[0][0]

    def dense(maximum: np.ndarray, mean: np.ndarray) -> np.ndarray:
        return dense_session.run(None, {"maximum": maximum, "mean": mean})[0]

    return features, dense, costs


def onnxruntime_import(repeat: int = 3) -> tuple[float, float]:
    """Median wall and CPU seconds of ``import onnxruntime`` after ``import torch``, fresh interpreters."""
    runs = [subprocess.run([sys.executable, "-c", _ONNX_IMPORT], check=True, capture_output=True,
                           text=True).stdout.split() for _ in range(repeat)]
    return statistics.median(float(r[0]) for r in runs), statistics.median(float(r[1]) for r in runs)


def embed(network: Timed, track: Track) -> np.ndarray:
    """(n_windows, 200) embeddings of a track, streamed through ``network`` as analysis does."""
    from queueemo.emotion import patch_stream
    from queueemo.emotion.embedding import CHUNK_WINDOWS

    return patch_stream.embed_stream(network, iter(track.chunks), CHUNK_WINDOWS)


def prepare(name: str, network) -> tuple[tuple[Callable, Callable], str]:
    """Backend ``name``'s two calls, and what setting it up cost (besides compiling on first use)."""
    import torch

    if name == "compile":
        torch._inductor.config.compile_threads = 1  # compile in this process, as a worker would
        compiled = torch.compile(network.varying_features), torch.compile(network.embed_varying)
        return torch_calls(*compiled), "compiles during its first pass"
    if name == "onnx":
        folder = tempfile.mkdtemp()
        features, dense, costs = onnx_calls(network, Path(folder))
        wall, cpu = onnxruntime_import()
        return (features, dense), (f"export {costs['export s']:.1f} s, sessions {costs['sessions s']:.2f} s, "
                                   f"import onnxruntime after torch {wall:.2f} s ({cpu:.2f} CPU-s)")
    started = time.perf_counter()
    quantised = copy.deepcopy(network)
    quantised.dense = torch.ao.quantization.quantize_dynamic(
        torch.nn.Sequential(network.dense), {torch.nn.Linear}, dtype=torch.qint8)[0]
    return (torch_calls(quantised.varying_features, quantised.embed_varying),
            f"quantisation {time.perf_counter() - started:.2f} s")


def largest_difference(ours: list[np.ndarray], eager: list[np.ndarray]) -> float:
    return max(float(np.abs(a - b).max()) for a, b in zip(ours, eager, strict=True))


@dataclass
class Runs:
    """One backend's measurements."""

    first_pass: float = 0.0  # wall seconds of its first pass over every file (compilation included)
    cpu: list[dict[str, float]] = field(default_factory=list)  # per repeat: CPU-s per call kind
    wall: list[float] = field(default_factory=list)  # per repeat: wall seconds of the whole pass
    embeddings: list[np.ndarray] = field(default_factory=list)  # per file, from the first timed pass


def measure(calls: dict[str, tuple[Callable, Callable]], tracks: list[Track], repeat: int, hours: float,
            geometry: tuple[int, int]) -> dict[str, Runs]:
    """A first pass of every backend, then ``repeat`` timed passes in a rotating order."""
    names = list(calls)
    runs = {name: Runs() for name in names}
    for name in names:
        started = time.perf_counter()
        for track in tracks:
            embed(Timed(*calls[name], *geometry), track)
        runs[name].first_pass = time.perf_counter() - started
    for number in range(repeat):
        for name in names[number % len(names):] + names[: number % len(names)]:
            timed = Timed(*calls[name], *geometry)
            started = time.perf_counter()
            out = [embed(timed, track) for track in tracks]
            runs[name].wall.append(time.perf_counter() - started)
            runs[name].cpu.append(dict(timed.seconds))
            runs[name].embeddings = runs[name].embeddings or out
        print(f"  repeat {number + 1}: load {load_average()}; " + ", ".join(
            f"{n} {sum(runs[n].cpu[-1].values()) / hours:.2f}" for n in names) + " CPU-s/h", flush=True)
    return runs


def report(runs: dict[str, Runs], tracks: list[Track], hours: float, start_up: dict[str, str]) -> None:
    from queueemo.emotion.inference import predict_features
    from queueemo.emotion.inference_v2 import load_clip_v2

    model, _ = load_clip_v2()
    outputs = {name: [predict_features(model, np.hstack([e, t.descriptors]))
                      for e, t in zip(r.embeddings, tracks, strict=True)] for name, r in runs.items()}
    eager = runs["eager"]
    print(f"\nmedians of {len(eager.cpu)}, CPU-s per audio-hour (network calls only):")
    print(f"{'backend':<8} {'features':>9} {'dense':>7} {'total':>7} {'vs eager':>9} "
          f"{'max|Δemb|':>10} {'max|Δa/v|':>10}")
    for name, r in runs.items():
        total = [sum(c.values()) for c in r.cpu]
        ratio = statistics.median(t / sum(e.values()) for t, e in zip(total, eager.cpu, strict=True))
        features = statistics.median(c["features"] for c in r.cpu) / hours
        dense = statistics.median(c["dense"] for c in r.cpu) / hours
        print(f"{name:<8} {features:9.2f} {dense:7.2f} {statistics.median(total) / hours:7.2f} {ratio:9.3f} "
              f"{largest_difference(r.embeddings, eager.embeddings):10.2e} "
              f"{largest_difference(outputs[name], outputs['eager']):10.2e}")
    for name, r in runs.items():
        extra = r.first_pass - statistics.median(r.wall)
        print(f"start-up, {name}: first pass over the files took {extra:.1f} s more than the median pass"
              + (f"; {start_up[name]}" if name in start_up else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", type=Path, nargs="+")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", default=",".join(BACKENDS),
                        help="comma-separated backends to compare with eager")
    parser.add_argument("--inductor-cache", type=Path,
                        help="torch.compile's cache folder (default: a new one, a cold compile; run twice "
                             "with the same folder for a warm one)")
    args = parser.parse_args()
    print(f"load average at start: {load_average()}")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(args.inductor_cache or tempfile.mkdtemp())
    import torch

    from queueemo.emotion.embedding import load_front_end

    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    network = load_front_end().network
    tracks = decode(args.files)
    hours = sum(t.chunks[-1][1] for t in tracks) * 0.5 / 3600
    print(f"{len(tracks)} files, {hours:.3f} audio-hours; torch {torch.__version__}, one thread")
    calls = {"eager": torch_calls(network.varying_features, network.embed_varying)}
    start_up = {}
    for name in [b for b in args.only.split(",") if b in BACKENDS and b != "eager"]:
        try:
            calls[name], start_up[name] = prepare(name, network)
        except Exception as exc:  # a backend that cannot run is a result: say why
            print(f"{name}: unavailable: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    runs = measure(calls, tracks, args.repeat, hours, (network.receptive_margin, network.stride))
    report(runs, tracks, hours, start_up)
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
