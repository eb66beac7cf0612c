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
    parser.add_argument("models", nargs="+", help="DIR (a v2 head) or BACKEND=DIR (e.g. v2-lite=DIR)")
    args = parser.parse_args()

    cache = args.cache.expanduser()
    specs = [m.split("=", 1) if "=" in m else ("v2", m) for m in args.models]

    def validation(front: str, model_dir: Path | None = None) -> tuple[list, list]:
        loaded = (load(args.data, cache, front=front, model_dir=model_dir)
                  for load in (datasets.load_vgmidi, datasets.load_4q))
        curves, clips = (datasets.by_split(tracks, "val") for tracks in loaded)
        return curves, clips

    curves, clips = validation("v2")
    # Each v2-lite head is scored on the embeddings of the student stored next to it.
    features = [validation(b, Path(d)) if b != "v2" else None for b, d in specs]
    for line in compare.compare([Path(d) for _, d in specs], curves, clips,
                                backends=[b for b, _ in specs], features=features):
        print(line)


if __name__ == "__main__":
    main()
