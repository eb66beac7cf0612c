"""Paired comparison of v2 clip models on the validation split (see queueemo.emotion.training.compare)."""

from __future__ import annotations

import argparse
from pathlib import Path

from queueemo.emotion.training import compare, datasets


def main() -> None:
    parser = argparse.ArgumentParser(description=compare.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path("~/.cache/queueemo/features"))
    parser.add_argument("model_dirs", type=Path, nargs="+")
    args = parser.parse_args()

    cache = args.cache.expanduser()
    curves = datasets.by_split(datasets.load_vgmidi(args.data, cache, front="v2"), "val")
    clips = datasets.by_split(datasets.load_4q(args.data, cache, front="v2"), "val")
    for line in compare.compare(args.model_dirs, curves, clips):
        print(line)


if __name__ == "__main__":
    main()
