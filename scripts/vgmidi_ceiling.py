"""Human ceiling of VGMIDI's within-piece (and pooled) arousal/valence r, from per-listener annotations.

``python scripts/vgmidi_ceiling.py RAW.json [RAW2.json] --data ../shared/data`` reads VGMIDI's raw
annotation files (``annotations/vgmidi_raw_*.json`` of github.com/lucasnfe/vgmidi, or a transcribed
subset in the same format: {"annotations": {"piece<P>_<k>": {"arousal": [...], "valence": [...]}}}),
matches each raw piece to the piece of ``dynamic.csv`` whose per-measure mean and std it reproduces
(pieces that match none are listed and not used), and prints per piece and as means over pieces the
statistics of ``queueemo.emotion.training.agreement``.
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


def read_raw(paths: list[Path]) -> dict[str, dict[str, list[dict]]]:
    """Raw pieces as {file stem/piece: {listener key: entry}}; pieces of different files stay apart."""
    pieces: dict[str, dict[str, list[dict]]] = {}
    for path in paths:
        try:
            entries = json.loads(path.read_text())["annotations"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            sys.exit(f"error: cannot read {path} as VGMIDI raw annotations ({error})")
        for key, entry in entries.items():
            pieces.setdefault(f"{path.stem}/{key.rsplit('_', 1)[0]}", {})[key] = entry
    return pieces


def read_annotated(data: Path) -> list[agreement.Annotated]:
    """The per-measure rows of ``vgmidi/dynamic.csv`` grouped by piece."""
    rows: dict[str, list[dict[str, str]]] = {}
    with open(data / "vgmidi" / "dynamic.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            rows.setdefault(row["piece"], []).append(row)
    pieces = []
    for piece, group in rows.items():
        group.sort(key=lambda r: float(r["start_s"]))
        column = {name: np.array([float(r[name]) for r in group]) for name in group[0] if name != "piece"}
        pieces.append(agreement.Annotated(
            piece, int(group[0]["raters"]),
            np.stack([column["arousal"], column["valence"]], axis=1),
            np.stack([column["arousal_std"], column["valence_std"]], axis=1),
            column["start_s"], column["end_s"]))
    return pieces


def ratings_of(listeners: dict[str, dict]) -> tuple[np.ndarray, np.ndarray]:
    """(listeners, measures) arousal and valence; ValueError when a listener lacks a curve or the
    curves differ in length."""
    curves = {d: [entry.get(d) for entry in listeners.values()] for d in DIMENSIONS}
    lengths = {len(c) if isinstance(c, list) else -1 for d in DIMENSIONS for c in curves[d]}
    if len(lengths) != 1 or -1 in lengths:
        raise ValueError(f"listeners' curves are missing or of different lengths {sorted(lengths)}")
    return np.array(curves["arousal"], dtype=float), np.array(curves["valence"], dtype=float)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("raw", nargs="+", type=Path, help="vgmidi_raw_*.json (or a subset, same format)")
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder (holds vgmidi/)")
    parser.add_argument("--splits", type=int, default=agreement.SPLITS, help="random splits per piece")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    try:
        annotated = {p.piece: p for p in read_annotated(args.data)}
    except (OSError, KeyError, ValueError) as error:
        sys.exit(f"error: cannot read vgmidi/dynamic.csv under {args.data} ({error})")
    rng = np.random.default_rng(args.seed)
    matched = []
    print(f"{'raw piece':<22} {'piece':<6} {'split':<5} {'lis':>3} {'meas':>4} {'max|Δ|':>7}"
          "   a: r half  r full ceiling 1-v-rest flat   v: r half  r full ceiling 1-v-rest flat")
    for name, listeners in sorted(read_raw(args.raw).items()):
        try:
            arousal, valence = ratings_of(listeners)
        except ValueError as error:
            print(f"{name:<22} not used: {error}")
            continue
        match = agreement.match_piece(arousal, valence, list(annotated.values()))
        if match is None:
            print(f"{name:<22} not used: matches no piece of dynamic.csv "
                  f"({len(arousal)} listeners, {arousal.shape[1]} measures)")
            continue
        piece = annotated[match.piece]
        if piece.mean.std(0).min() < 1e-6:
            print(f"{name:<22} {match.piece:<6} not used: its annotated curve does not move")
            continue
        row = {"piece": match.piece, "ratings": {"arousal": arousal, "valence": valence},
               "annotated": piece, "stats": {}}
        cells = []
        for dimension, ratings in (("arousal", arousal), ("valence", valence)):
            r_half = agreement.split_half(ratings, rng, args.splits)
            reliability = agreement.spearman_brown(r_half)
            window_r = agreement.split_half(
                ratings, rng, args.splits,
                transform=lambda c, p=piece: agreement.windows(c, p.starts, p.ends))
            singles = agreement.one_against_rest(ratings)
            flat = int(sum(ratings.std(1) < 1e-9))
            row["stats"][dimension] = (r_half, reliability, agreement.ceiling(reliability), singles.mean(),
                              agreement.ceiling(agreement.spearman_brown(window_r)))
            cells.append(f"{r_half:9.3f} {reliability:7.3f} {agreement.ceiling(reliability):7.3f} "
                         f"{singles.mean():8.3f} {flat:4d}")
        matched.append(row)
        print(f"{name:<22} {match.piece:<6} {split_of(match.piece):<5} {len(arousal):>3} "
              f"{arousal.shape[1]:>4} {match.max_delta:7.1e}   " + "   ".join(cells)
              + f"   (std ddof {match.ddof})")
    if not matched:
        sys.exit("error: no raw piece matched dynamic.csv")

    print(f"\n{len(matched)} pieces, {sum(len(m['ratings']['arousal']) for m in matched)} listener curves; "
          "mean (SD) over pieces:")
    labels = ("split-half r", "Spearman-Brown r (full panel)", "ceiling sqrt(r full)",
              "one listener vs the rest", "ceiling at 0.5-s windows")
    for index, label in enumerate(labels):
        cells = []
        for dimension in DIMENSIONS:
            values = np.array([m["stats"][dimension][index] for m in matched])
            spread = values.std(ddof=1) if len(values) > 1 else 0.0
            cells.append(f"{dimension} {values.mean():.3f} ({spread:.3f})")
        print(f"  {label:<32} " + "   ".join(cells))

    print("\nPooled over pieces (the per-window 'VGMIDI r'; measures weighted by their duration):")
    for dimension in DIMENSIONS:
        curves = [m["ratings"][dimension] for m in matched]
        weights = [m["annotated"].ends - m["annotated"].starts for m in matched]
        r_half = agreement.pooled_split_half(curves, rng, args.splits, weights)
        reliability = agreement.spearman_brown(r_half)
        single = agreement.pooled_one_against_rest(curves, rng, args.splits, weights)
        print(f"  {dimension}: split-half r {r_half:.3f}, full panel {reliability:.3f}, "
              f"ceiling {agreement.ceiling(reliability):.3f}, "
              f"one listener per piece vs the rest {single:.3f}")


if __name__ == "__main__":
    main()
