"""Distil musicnn into the ``v2-lite`` student (see queueemo.emotion.training.distil, models/README.md).

Reads the teacher's cached embeddings (``queueemo train clip`` fills them) and the student's cached
input mels (filled here on first use), trains on the training split only, and writes
``musicnn_student.npz`` + ``musicnn_student.json`` (with the validation fit) to ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import json
import zipfile
from pathlib import Path

import numpy as np
import torch

from queueemo.assets import file_sha256, model_version
from queueemo.emotion.embedding import load_full_network
from queueemo.emotion.musicnn_input import FRONT_END_NAME, audio_settings
from queueemo.emotion.student import STUDENT_NAME, StudentConfig, config_dict, student_arrays
from queueemo.emotion.training import datasets
from queueemo.emotion.training.distil import DistilTraining, distil, load_pairs
from queueemo.emotion.training.embeddings import fill_cache


def _groups(root: Path) -> dict[str, list[tuple[str, str]]]:
    """Per data set, (cache file name, split group) of every file."""
    sets: dict[str, list[tuple[str, str]]] = {"vgmidi": [], "4q": [], "emopia": []}
    with (root / "vgmidi" / "pieces.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            audio = root / "vgmidi" / "audio" / f"{row['piece']}.opus"
            sets["vgmidi"].append((datasets.cache_name(audio), row["piece"]))
    with (root / "4q" / "metadata.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            audio = root / "4q" / "audio" / row["Quadrant"] / f"{row['Song']}.opus"
            sets["4q"].append((datasets.cache_name(audio), row["Artist"].strip().lower()))
    with zipfile.ZipFile(root / "emopia" / "midis.zip") as archive:
        for name in archive.namelist():
            if name.endswith(".mid"):
                stem = Path(name).stem
                sets["emopia"].append((f"{stem}.npy", stem[3:].rsplit("_", 1)[0]))
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path("~/.cache/queueemo/features"))
    parser.add_argument("--out", type=Path, default=Path("models"))
    parser.add_argument("--steps", type=int, default=DistilTraining.steps)
    parser.add_argument("--seed", type=int, default=DistilTraining.seed)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fill", default="vgmidi,4q,emopia",
                        help="Data sets whose missing mels are computed first (comma-separated, or none)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    cache, root = args.cache.expanduser(), datasets.require_data(args.data)
    sets = tuple(name for name in args.fill.split(",") if name in ("vgmidi", "4q", "emopia"))
    for error in fill_cache(root, cache, sets, front="mel") if sets else ():
        print(f"skipped {error}")
    train, val = [], []
    for name, files in _groups(root).items():
        mel_dir = cache / datasets.MEL_FOLDER / name
        teacher_dir = cache / datasets.CACHE_FOLDERS["v2"] / name
        for split, out in (("train", train), ("val", val)):
            out += load_pairs(mel_dir, teacher_dir, [f for f, g in files if datasets.split_of(g) == split])
    print(f"{len(train)} training files, {len(val)} validation files")
    network, info = distil(train, val, DistilTraining(seed=args.seed, steps=args.steps),
                           StudentConfig(), report=print)

    _, basis = load_full_network()
    args.out.mkdir(parents=True, exist_ok=True)
    weights = args.out / f"{STUDENT_NAME}.npz"
    np.savez(weights, **student_arrays(network, basis))
    digest = file_sha256(weights)
    info = {"version": f"{STUDENT_NAME}-{digest[:12]}",
            "sha256": digest, "teacher": model_version(FRONT_END_NAME), "audio": audio_settings(),
            "config": config_dict(network.config), **info}
    (args.out / f"{STUDENT_NAME}.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {weights} ({info['version']})")


if __name__ == "__main__":
    main()
