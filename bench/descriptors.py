"""Cost of the per-window acoustic descriptors next to the rest of a v2 analysis, on one audio file.

    python bench/descriptors.py FILE [--repeat 5]

Single process, torch on one thread, medians of --repeat runs of: the whole front end (decode, mel,
musicnn and descriptors: ``embed_file``) and the descriptors alone on the same file's mel power
(``descriptors.window_descriptors``, every frame once, as ``embed_stream`` feeds them). Prints both and
the descriptors' share of the front end.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _queuebench import median_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import torch

    from queueemo.audio import decode_windows
    from queueemo.emotion.descriptors import window_descriptors
    from queueemo.emotion.embedding import (
        FRAMES_PER_WINDOW,
        SAMPLE_RATE,
        embed_file,
        load_front_end,
        stream_mel,
    )

    torch.set_num_threads(1)
    front = load_front_end()
    power, n_windows = stream_mel(front, decode_windows(args.file, sample_rate=SAMPLE_RATE))
    embed_file(args.file)  # warm up
    whole = median_seconds(lambda: embed_file(args.file), args.repeat)
    alone = median_seconds(lambda: window_descriptors(power, n_windows, FRAMES_PER_WINDOW), args.repeat)
    print(f"{args.file.name}: {n_windows * 0.5 / 60:.1f} min of audio; medians of {args.repeat}")
    print(f"front end with descriptors (embed_file)  {whole:8.3f} s")
    print(f"descriptors alone                        {alone:8.3f} s")
    print(f"descriptors' share of the front end: {alone / whole:.1%}")


if __name__ == "__main__":
    main()
