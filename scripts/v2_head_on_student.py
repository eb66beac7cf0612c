"""Write v2's head, weights unchanged, as the v2-lite head of the student in ``--out``.

The head trained on musicnn's embedding (``clip_v2.pt`` in ``--models``) is stored as arrays
(``clip_v2_lite.npz`` + ``.json``, run by the numpy runtime) whose JSON names the student beside it
(``musicnn_student.json`` in ``--out``) as its front end, and v2's version as the source of its weights.
For a student distilled to reproduce what this head makes of musicnn's embedding (models/README.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from queueemo.assets import read_info
from queueemo.emotion.inference_v2 import load_clip_v2
from queueemo.emotion.musicnn_input import audio_settings
from queueemo.emotion.numpy_head import HEAD_FILES
from queueemo.emotion.training.assets import save_asset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=Path, help="Folder of the v2 head (default: installed)")
    parser.add_argument("--out", type=Path, required=True, help="Folder of the student; the head goes here")
    args = parser.parse_args()
    head, version = load_clip_v2(args.models, "v2")
    name, front_name, _ = HEAD_FILES["v2-lite"]
    info = save_asset(args.out, name, head.state_dict(), as_numpy=True, info={
        "front_end": read_info(front_name, args.out)["version"],
        "audio": audio_settings(),
        "config": {"descriptors": 0, **head.config.to_dict()},
        "members": len(head.members),
        "segment_windows": head.segment_windows,
        "weights_of": version,
    })
    print(f"wrote {args.out / name}.npz ({info['version']}, the weights of {version})")


if __name__ == "__main__":
    main()
