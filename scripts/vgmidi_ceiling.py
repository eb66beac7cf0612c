"""Human ceiling of VGMIDI's within-piece (and pooled) arousal/valence r, from per-listener annotations.

``python scripts/vgmidi_ceiling.py RAW.json [RAW2.json] --data ../shared/data [--model v2]`` reads
VGMIDI's raw annotation files (``annotations/vgmidi_raw_*.json`` of github.com/lucasnfe/vgmidi, or a
transcribed subset in the same format: {"annotations": {"piece<P>_<k>": {"arousal": [...], "valence":
[...]}}}), matches each raw piece to the piece of ``dynamic.csv`` whose per-measure mean and std it
reproduces (pieces that match none are listed and not used), and prints per piece and as means over
pieces the statistics of ``queueemo.emotion.training.agreement``. ``--model`` adds the shipped clip
model's within-piece r on the matched pieces (per 0.5-s window, from the feature cache, as ``queueemo
evaluate`` computes it) next to each piece's ceiling.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from queueemo.emotion.training import agreement
from queueemo.emotion.training.datasets import split_of

DIMENSIONS = ("arousal", "valence")
STATS = ("split-half r", "full-panel reliability", "ceiling sqrt(reliability)",
         "one listener vs the rest", "ceiling at 0.5-s windows")


def read_raw(paths: list[Path]) -> dict[str, dict[str, dict]]:
    """Raw pieces as {file stem/piece: {listener key: entry}}; pieces of different files stay apart."""
    pieces: dict[str, dict[str, dict]] = {}
    for path in paths:
        try:
            entries = json.loads(path.read_text())["annotations"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            sys.exit(f"error: cannot read {path} as VGMIDI raw annotations ({error})")
        for key, entry in entries.items():
            pieces.setdefault(f"{path.stem}/{key.rsplit('_', 1)[0]}", {})[key] = entry
    return pieces


def read_annotated(data: Path) -> dict[str, agreement.Annotated]:
    """The per-measure rows of ``vgmidi/dynamic.csv`` grouped by piece."""
    rows: dict[str, list[dict[str, str]]] = {}
    try:
        with open(data / "vgmidi" / "dynamic.csv", newline="") as handle:
            for row in csv.DictReader(handle):
                rows.setdefault(row["piece"], []).append(row)
    except (OSError, KeyError) as error:
        sys.exit(f"error: cannot read vgmidi/dynamic.csv under {data} ({error})")
    pieces = {}
    for piece, group in rows.items():
        group.sort(key=lambda r: float(r["start_s"]))
        column = {name: np.array([float(r[name]) for r in group]) for name in group[0] if name != "piece"}
        pieces[piece] = agreement.Annotated(
            piece, int(group[0]["raters"]),
            np.stack([column["arousal"], column["valence"]], axis=1),
            np.stack([column["arousal_std"], column["valence_std"]], axis=1),
            column["start_s"], column["end_s"])
    return pieces


def ratings_of(listeners: dict[str, dict]) -> dict[str, np.ndarray]:
    """{dimension: (listeners, measures)}; ValueError when a listener lacks a curve or the curves
    differ in length."""
    curves = {d: [entry.get(d) for entry in listeners.values()] for d in DIMENSIONS}
    lengths = {len(c) if isinstance(c, list) else -1 for d in DIMENSIONS for c in curves[d]}
    if len(lengths) != 1 or -1 in lengths:
        raise ValueError(f"listeners' curves are missing or of different lengths {sorted(lengths)}")
    return {d: np.array(curves[d], dtype=float) for d in DIMENSIONS}


def piece_stats(ratings: np.ndarray, piece: agreement.Annotated, rng: np.random.Generator,
                splits: int) -> tuple[float, ...]:
    """The ``STATS`` of one dimension of one piece."""
    r_half = agreement.split_half(ratings, rng, splits)
    reliability = agreement.panel_reliability(r_half)
    window_r = agreement.split_half(ratings, rng, splits,
                                    transform=lambda c: agreement.windows(c, piece.starts, piece.ends))
    return (r_half, reliability, agreement.ceiling(reliability),
            float(agreement.one_against_rest(ratings).mean()),
            agreement.ceiling(agreement.panel_reliability(window_r)))


def analyse(raw: dict[str, dict[str, dict]], annotated: dict[str, agreement.Annotated],
            rng: np.random.Generator, splits: int) -> list[dict]:
    """Match, verify and measure every raw piece; prints one line per piece."""
    matched = []
    print(f"{'raw piece':<22} {'piece':<6} {'split':<5} {'lis':>3} {'meas':>4} {'max|Δ|':>7}"
          "   a: r half  reliab. ceiling 1-v-rest flat   v: r half  reliab. ceiling 1-v-rest flat")
    for name, listeners in sorted(raw.items()):
        try:
            ratings = ratings_of(listeners)
        except ValueError as error:
            print(f"{name:<22} not used: {error}")
            continue
        listeners_n, measures = ratings["arousal"].shape
        match = agreement.match_piece(ratings["arousal"], ratings["valence"], list(annotated.values()))
        if match is None:
            print(f"{name:<22} not used: matches no piece of dynamic.csv ({listeners_n} listeners, "
                  f"{measures} measures)")
            continue
        piece = annotated[match.piece]
        if piece.mean.std(0).min() < 1e-6:
            print(f"{name:<22} {match.piece:<6} not used: its annotated curve does not move")
            continue
        stats = {d: piece_stats(ratings[d], piece, rng, splits) for d in DIMENSIONS}
        cells = [f"{s[0]:9.3f} {s[1]:7.3f} {s[2]:7.3f} {s[3]:8.3f} {int(sum(ratings[d].std(1) < 1e-9)):4d}"
                 for d, s in stats.items()]
        print(f"{name:<22} {match.piece:<6} {split_of(match.piece):<5} {listeners_n:>3} {measures:>4} "
              f"{match.max_delta:7.1e}   " + "   ".join(cells) + f"   (std ddof {match.ddof})")
        matched.append({"piece": match.piece, "ratings": ratings, "annotated": piece, "stats": stats})
    return matched


def summarise(matched: list[dict], rng: np.random.Generator, splits: int) -> None:
    """Means and SDs over pieces, and the pooled (between-piece) figures."""
    listeners = sum(len(m["ratings"]["arousal"]) for m in matched)
    print(f"\n{len(matched)} pieces, {listeners} listener curves; mean over pieces (SD; standard error "
          "of the mean):")
    for index, label in enumerate(STATS):
        cells = []
        for dimension in DIMENSIONS:
            values = np.array([m["stats"][dimension][index] for m in matched])
            spread = values.std(ddof=1) if len(values) > 1 else 0.0
            error = spread / np.sqrt(len(values))
            cells.append(f"{dimension} {values.mean():.3f} (SD {spread:.3f}, SE {error:.3f})")
        print(f"  {label:<27}" + "   ".join(cells))
    for dimension in DIMENSIONS:
        above = sum(m["stats"][dimension][2] >= 0.5 for m in matched)
        print(f"  {dimension}: {above} of {len(matched)} pieces have a ceiling of 0.5 or more")

    print("\nPooled over pieces (the per-window 'VGMIDI r'; measures weighted by their duration):")
    weights = [m["annotated"].ends - m["annotated"].starts for m in matched]
    for dimension in DIMENSIONS:
        curves = [m["ratings"][dimension] for m in matched]
        reliability = agreement.panel_reliability(agreement.pooled_split_half(curves, rng, splits, weights))
        single = agreement.pooled_one_against_rest(curves, rng, splits, weights)
        print(f"  {dimension}: full-panel reliability {reliability:.3f}, ceiling "
              f"{agreement.ceiling(reliability):.3f}, one listener per piece vs the rest {single:.3f}")


def compare_model(matched: list[dict], data: Path, cache: Path, front: str) -> None:
    """The clip model's within-piece r on the matched pieces next to their ceilings."""
    from queueemo.emotion.inference import predict_features
    from queueemo.emotion.inference_v2 import load_clip_v2
    from queueemo.emotion.training.datasets import load_vgmidi
    from queueemo.emotion.training.metrics import pearson

    model, version = load_clip_v2(None, front)
    tracks = {t.key: t for t in load_vgmidi(data, cache, front=front)}
    print(f"\n{front}/{version}: within-piece r per 0.5-s window against each piece's ceiling "
          "(train pieces were fitted: only val/test are held out)")
    rows = []
    for m in matched:
        track = tracks[m["piece"]]
        predicted = predict_features(model, track.features)
        r = [pearson(predicted[:, i], track.targets[:, i]) for i in range(2)]
        rows.append((r, [m["stats"][d][4] for d in DIMENSIONS]))
        print(f"  {m['piece']} {split_of(m['piece']):<5} arousal r {r[0]:6.3f} (ceiling {rows[-1][1][0]:.3f})"
              f"   valence r {r[1]:6.3f} (ceiling {rows[-1][1][1]:.3f})")
    model_r, ceilings = np.array([r for r, _ in rows]), np.array([c for _, c in rows])
    for i, dimension in enumerate(DIMENSIONS):
        print(f"  {dimension}: mean model r {model_r[:, i].mean():.3f}, mean ceiling "
              f"{ceilings[:, i].mean():.3f}, r across pieces between the two "
              f"{pearson(model_r[:, i], ceilings[:, i]):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("raw", nargs="+", type=Path, help="vgmidi_raw_*.json (or a subset, same format)")
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder (holds vgmidi/)")
    parser.add_argument("--splits", type=int, default=agreement.SPLITS, help="random splits per piece")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", choices=("v2", "v2-lite"), help="also score this clip model")
    parser.add_argument("--cache", type=Path, default=Path("~/.cache/queueemo/features"))
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    matched = analyse(read_raw(args.raw), read_annotated(args.data), rng, args.splits)
    if not matched:
        sys.exit("error: no raw piece matched dynamic.csv")
    summarise(matched, rng, args.splits)
    if args.model:
        compare_model(matched, args.data, args.cache.expanduser(), args.model)


if __name__ == "__main__":
    main()
