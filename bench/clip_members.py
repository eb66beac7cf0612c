"""Cost of the v2 clip model's ensemble next to the musicnn front end, on one audio file.

    python bench/clip_members.py FILE [--repeat 5]

Single process, torch on one thread, medians of --repeat runs of: the front end (decode + musicnn
embedding of every 0.5-s window, ``embed_file``), the shipped clip model on those embeddings (all its
members), and its first member alone (what one network costs). Prints each and the ensemble's share
of the whole analysis (front end + ensemble).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _queuebench import median_seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("file", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import torch

    from queueemo.emotion.embedding import embed_file, load_front_end
    from queueemo.emotion.inference import predict_features
    from queueemo.emotion.inference_v2 import load_clip_v2

    torch.set_num_threads(1)
    load_front_end()
    model, version = load_clip_v2()
    embeddings = embed_file(args.file)
    predict_features(model, embeddings)  # warm up
    front = median_seconds(lambda: embed_file(args.file), args.repeat)
    ensemble = median_seconds(lambda: predict_features(model, embeddings), args.repeat)
    single = median_seconds(lambda: predict_features(model.members[0], embeddings), args.repeat)
    minutes = len(embeddings) * 0.5 / 60
    print(f"{args.file.name}: {minutes:.1f} min of audio, {len(embeddings)} windows; {version}, "
          f"{len(model.members)} members; medians of {args.repeat}")
    print(f"front end (decode + musicnn)  {front:8.3f} s")
    print(f"clip model, all members       {ensemble:8.3f} s")
    print(f"clip model, one member        {single:8.3f} s")
    print(f"ensemble share of the analysis: {ensemble / (front + ensemble):.1%}; "
          f"analysis with the ensemble vs one member: {(front + ensemble) / (front + single):.3f}x")


if __name__ == "__main__":
    main()
