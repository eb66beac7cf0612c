"""Where queueemo's boundary brightness and onsets disagree with the transitions judge, and why.

    python bench/boundary_agreement.py FILE_OR_FOLDER... [--limit N] [--cache out.npz]
    python bench/boundary_agreement.py --cache out.npz          # the table again, from the cache

For each file, two pairs of regions (an opening and an ending each):

- queueemo's: the opening and the heard end that ``BoundaryAccumulator`` finds on the scan's own decode
  (16 kHz, the shipped model's rate);
- the judge's (bench/transitions.py): the first and the last 10 s of the audible part (momentary
  loudness within 20 LU of the integrated loudness, ffmpeg ``ebur128``).

On each, queueemo's brightness and onset density (``queueemo.boundaries``, from the 16 kHz windows of
that region) and the judge's (bench/yardstick.py's librosa descriptors, at 22.05 kHz; and again on
audio band-limited to 8 kHz, as the scan sees it). Printed: Pearson r between the pairs that isolate
(a) the regions, (b) the aggregation, (c) the band limit, (d) the detector itself. log2 throughout,
onset densities floored at 0.25 /s as the judge's agreement does.
The npz cache holds, per file and region, the 16-kHz region audio and the judge's values, so that
``--cache`` alone recomputes queueemo's side after a change to ``queueemo.boundaries`` without librosa.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import transitions
import yardstick
from _queuebench import REPO  # noqa: F401  (puts this checkout on sys.path)

SCAN_RATE = 16_000
REGIONS = ("q_start", "q_end", "j_start", "j_end")
MIN_ONSETS = 0.25


def judge_regions(path: Path) -> dict[str, tuple[float, float]]:
    """The judge's start and end regions (seconds), as ``transitions.describe_track`` cuts them."""
    times, values, integrated = transitions.momentary_loudness(path)
    audible = times[values >= max(integrated - transitions.AUDIBLE_LU, -70.0)]
    first = float(audible[0]) - 0.4 if len(audible) else 0.0
    last = float(audible[-1]) if len(audible) else float(times[-1])
    return {"j_start": (max(first, 0.0), min(first + transitions.REGION_S, last)),
            "j_end": (max(last - transitions.REGION_S, first), last)}


def band_limited(path: Path, lo: float, seconds: float) -> dict[str, float]:
    """The judge's descriptors of audio first decoded at the scan's 16 kHz (nothing above 8 kHz)."""
    import subprocess

    import librosa

    raw = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-ss", f"{max(lo, 0.0):.3f}", "-t", f"{seconds:.3f}",
         "-i", str(path), "-ac", "1", "-ar", str(SCAN_RATE), "-f", "f32le", "-"],
        capture_output=True, check=True).stdout
    y = librosa.resample(np.frombuffer(raw, dtype="<f4"), orig_sr=SCAN_RATE,
                         target_sr=yardstick.SAMPLE_RATE)
    return yardstick.descriptors(y, yardstick.SAMPLE_RATE)


def collect(path: Path) -> dict[str, object]:
    """Region audio at 16 kHz and the judge's values for one file."""
    from queueemo.audio import WINDOW_SECONDS, decode_windows
    from queueemo.boundaries import BoundaryAccumulator

    acc = BoundaryAccumulator()
    windows = np.concatenate(list(decode_windows(path, sample_rate=SCAN_RATE, observe=acc.add)))
    found = acc.result()
    spans = {"q_start": (found.opening.start * WINDOW_SECONDS, found.opening.stop * WINDOW_SECONDS),
             "q_end": (found.heard_end.start * WINDOW_SECONDS, found.heard_end.stop * WINDOW_SECONDS),
             **judge_regions(path)}
    signal = windows.reshape(-1)
    out: dict[str, object] = {"path": str(path), "stored": (found.opening_brightness, found.ending_brightness,
                                                           found.opening_onsets, found.ending_onsets)}
    for name, (lo, hi) in spans.items():
        seconds = max(hi - lo, 1.0)
        out[name + "_audio"] = signal[int(lo * SCAN_RATE): int((lo + seconds) * SCAN_RATE)]
        full = yardstick.describe_region(path, lo, seconds)
        limited = band_limited(path, lo, seconds)
        out[name + "_judge"] = np.array([full["centroid"], full["onset_rate"],
                                         limited["centroid"], limited["onset_rate"]])
        out[name + "_span"] = np.array([lo, hi])
    return out


def queueemo_measure(audio: np.ndarray) -> tuple[float, float]:
    """queueemo's brightness (log2 Hz) and onset density (log2 /s) of one region's 16 kHz audio."""
    from queueemo.audio import WINDOW_SECONDS
    from queueemo.boundaries import brightness_of, frame_flux, onset_density, window_features

    size = round(WINDOW_SECONDS * SCAN_RATE)
    whole = len(audio) // size
    if not whole:
        return float("nan"), float("nan")
    rows = audio[: whole * size].reshape(whole, size)
    features = window_features(rows, SCAN_RATE)
    flux = frame_flux(features.bin_db, None)
    return (float(np.log2(max(brightness_of(features.centroid), 20.0))),
            float(np.log2(max(onset_density(flux), MIN_ONSETS))))


def r(x, y) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    return float(np.corrcoef(x[ok], y[ok])[0, 1]) if ok.sum() > 2 else float("nan")


def table(records: list[dict[str, object]]) -> None:
    """Pearson r over every opening and ending, for each pair that isolates one cause."""
    q = {name: np.array([queueemo_measure(rec[name + "_audio"]) for rec in records]) for name in REGIONS}
    j = {name: np.array([rec[name + "_judge"] for rec in records]) for name in REGIONS}
    floor = lambda v: np.log2(np.maximum(v, MIN_ONSETS))  # noqa: E731
    stored_b = np.log2(np.maximum(np.array([rec["stored"][:2] for rec in records]).T.reshape(-1), 20.0))
    stored_o = floor(np.array([rec["stored"][2:] for rec in records]).T.reshape(-1))

    def both(d, prefix, column):
        return np.concatenate([d[prefix + "_start"][:, column], d[prefix + "_end"][:, column]])

    rows = [
        ("stored (as scanned) vs judge", stored_b, both(j, "j", 0), stored_o, floor(both(j, "j", 1))),
        ("queueemo on its regions vs judge", both(q, "q", 0), both(j, "j", 0), both(q, "q", 1),
         floor(both(j, "j", 1))),
        ("(a) queueemo on the judge's regions", both(q, "j", 0), both(j, "j", 0), both(q, "j", 1),
         floor(both(j, "j", 1))),
        ("(a) judge on queueemo's vs its own regions", both(j, "q", 0), both(j, "j", 0),
         floor(both(j, "q", 1)), floor(both(j, "j", 1))),
        ("(c) judge band-limited to 8 kHz vs judge", both(j, "j", 2), both(j, "j", 0),
         floor(both(j, "j", 3)), floor(both(j, "j", 1))),
        ("(b,d) queueemo vs judge band-limited, same regions", both(q, "j", 0), both(j, "j", 2),
         both(q, "j", 1), floor(both(j, "j", 3))),
    ]
    print(f"{len(records)} files, {2 * len(records)} regions; Pearson r (log2)")
    print(f"  {'pair':<52} {'brightness':>10} {'onsets':>8}")
    for name, b1, b2, o1, o2 in rows:
        print(f"  {name:<52} {r(b1, b2):>10.2f} {r(o1, o2):>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--limit", type=int, default=0, help="only the first N files")
    parser.add_argument("--cache", type=Path, default=None, help="npz of collected regions (read/write)")
    args = parser.parse_args()

    from queueemo.audio import is_audio_path

    records: list[dict[str, object]] = []
    if args.cache and args.cache.exists() and not args.paths:
        with np.load(args.cache, allow_pickle=True) as data:
            records = list(data["records"])
    else:
        files = [p for root in args.paths for p in ([root] if root.is_file() else sorted(root.rglob("*")))
                 if p.is_file() and is_audio_path(p)]
        files = files[:: max(1, len(files) // args.limit)][: args.limit] if args.limit else files
        for path in files:
            try:
                records.append(collect(path))
            except Exception as exc:  # one bad file must not end the survey
                print(f"skipped {path}: {exc}")
        if args.cache:
            np.savez(args.cache, records=np.array(records, dtype=object))
    table(records)


if __name__ == "__main__":
    main()
