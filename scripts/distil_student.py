"""Distil musicnn into the ``v2-lite`` student (see queueemo.emotion.training.distil, models/README.md).

Reads the teacher's cached embeddings (``queueemo train clip`` fills them) and the student's cached
input mels (filled here on first use), trains on the training split only, and writes
``musicnn_student.npz`` + ``musicnn_student.json`` (with the validation fit) to ``--out``.

``--extra DIR...`` adds unlabelled music (the first ``--extra-minutes`` of every audio file under the
folders): its mels and the teacher's embeddings are computed into ``<cache>/<folder>/extra/`` first.
``--init DIR`` starts from the student in DIR; ``--deepen 8 16`` adds gated residual k3 layers of those
dilations on top of it (they start out adding nothing: the warm start computes what DIR's student does).
``--checkpoint FILE`` keeps the best network so far
(by the quick validation look); ``--finish FILE`` writes the weights from such a file without training.
``--head-weight W`` (and ``--projection-weight``) adds the frozen v2 head's view of the embedding to
the loss (the v2 head in ``--head DIR``, default the installed models); the checkpoint then keeps the
network whose head outputs are closest to the teacher's (``--head DIR`` alone, at weight 0, only
reports that closeness and picks the checkpoint by it).
"""

from __future__ import annotations

import argparse
import csv
import json
import zipfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from queueemo.assets import file_sha256, model_version, read_info
from queueemo.emotion.embedding import load_full_network
from queueemo.emotion.inference_v2 import load_clip_v2
from queueemo.emotion.musicnn_input import FRONT_END_NAME, HOP_LENGTH, SAMPLE_RATE, audio_settings
from queueemo.emotion.numpy_student import load_numpy_student
from queueemo.emotion.training import datasets
from queueemo.emotion.training.distil import DistilTraining, distil, fit_report, load_pairs
from queueemo.emotion.training.embeddings import (
    EXTRA_FOLDER,
    audio_files,
    extra_jobs,
    fill_cache,
    run_jobs,
)
from queueemo.emotion.training.student import (
    STUDENT_NAME,
    StudentConfig,
    StudentNetwork,
    config_dict,
    deepened,
    network_of,
    student_arrays,
)


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


def _initial(model_dir: Path, dilations: tuple[int, ...], seed: int) -> tuple[StudentNetwork, str]:
    """The (folded) student in ``model_dir`` as a trainable network without batch norm, deepened by
    gated layers of ``dilations`` (if any), and its version."""
    network = network_of(load_numpy_student(model_dir)[0])
    return (deepened(network, dilations, seed) if dilations else network,
            read_info(STUDENT_NAME, model_dir)["version"])


def _save_checkpoint(path: Path, network: StudentNetwork, info: dict) -> None:
    partial = path.with_suffix(".partial")
    torch.save({"state": network.state_dict(), "config": config_dict(network.config),
                "batch_norm": isinstance(network.norms[0], torch.nn.BatchNorm1d), "info": info}, partial)
    partial.replace(path)


def _load_checkpoint(path: Path) -> tuple[StudentNetwork, dict]:
    stored = torch.load(path, weights_only=False)
    network = StudentNetwork(StudentConfig.from_dict(stored["config"]), batch_norm=stored["batch_norm"])
    network.load_state_dict(stored["state"])
    return network.eval(), stored["info"]


def _extra_pairs(args: argparse.Namespace, cache: Path) -> tuple[list, dict]:
    """Fill the caches of the ``--extra`` audio; its (mel, teacher) pairs and what was used."""
    files = audio_files(args.extra)
    windows = round(args.extra_minutes * 120) if args.extra_minutes else None
    for error in run_jobs(extra_jobs(files, cache, max_windows=windows), args.jobs):
        print(f"skipped {error}")
    names = [datasets.cache_name(f) for f in files]
    pairs = load_pairs(cache / datasets.MEL_FOLDER / EXTRA_FOLDER,
                       cache / datasets.CACHE_FOLDERS["v2"] / EXTRA_FOLDER, names)
    hours = sum(len(p.mel) for p in pairs) * HOP_LENGTH / SAMPLE_RATE / 3600
    print(f"{len(pairs)} extra files of {len(files)}, {hours:.2f} audio-hours")
    return pairs, {"folders": [str(f) for f in args.extra], "files": len(pairs),
                   "audio_hours": round(hours, 3), "max_minutes": args.extra_minutes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path("~/.cache/queueemo/features"))
    parser.add_argument("--out", type=Path, default=Path("models"))
    parser.add_argument("--steps", type=int, default=DistilTraining.steps)
    parser.add_argument("--seed", type=int, default=DistilTraining.seed)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=DistilTraining.learning_rate)
    parser.add_argument("--fill", default="vgmidi,4q,emopia",
                        help="Data sets whose missing mels are computed first (comma-separated, or none)")
    parser.add_argument("--extra", type=Path, nargs="*", default=[],
                        help="Folders of unlabelled music to distil on as well (never the bench libraries)")
    parser.add_argument("--extra-minutes", type=float, default=5.0, help="Cap per extra file (0: whole)")
    parser.add_argument("--extra-share", type=float, default=0.33, help="Share of crops from the extra audio")
    parser.add_argument("--jobs", type=int, default=2, help="Processes filling the caches")
    parser.add_argument("--init", type=Path, help="Start from the student in this folder")
    parser.add_argument("--deepen", type=int, nargs="*", default=[],
                        help="Dilations of gated residual k3 layers added on top of the --init student")
    parser.add_argument("--checkpoint", type=Path, help="Keep the best network so far in this file")
    parser.add_argument("--finish", type=Path, help="Write the weights of this checkpoint, no training")
    parser.add_argument("--head-weight", type=float, default=DistilTraining.head_weight,
                        help="Weight of the MSE of the frozen v2 head's outputs, student vs teacher")
    parser.add_argument("--projection-weight", type=float, default=DistilTraining.projection_weight,
                        help="Weight of the MSE of the v2 head members' projections")
    parser.add_argument("--embedding-weight", type=float, default=DistilTraining.embedding_weight,
                        help="Weight of the embedding MSE + cosine terms")
    parser.add_argument("--head", type=Path, help="The v2 head's folder (default: installed); given, "
                        "its MSE is reported (and picks the checkpoint) even at head weight 0")
    args = parser.parse_args()
    if args.deepen and not args.init:
        parser.error("--deepen needs --init (the student to deepen)")
    if missing := [str(folder) for folder in args.extra if not folder.is_dir()]:
        parser.error(f"--extra: not a folder: {', '.join(missing)}")
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
    uses_head = args.head_weight > 0 or args.projection_weight > 0 or args.head is not None
    head, head_version = load_clip_v2(args.head, "v2") if uses_head else (None, None)
    if args.finish:
        network, info = _load_checkpoint(args.finish)
        info.update(train_files=len(train), val_files=len(val), validation_fit=fit_report(network, val, head))
        print(f"checkpoint of step {info['step']}: validation fit {info['validation_fit']}")
    else:
        extra, used = _extra_pairs(args, cache) if args.extra else ([], None)
        initial, initial_version = (_initial(args.init, tuple(args.deepen), args.seed) if args.init
                                    else (None, None))
        settings = DistilTraining(seed=args.seed, steps=args.steps, learning_rate=args.learning_rate,
                                  extra_share=args.extra_share if extra else 0.0,
                                  embedding_weight=args.embedding_weight, head_weight=args.head_weight,
                                  projection_weight=args.projection_weight)
        about = {"training": asdict(settings), "initial": initial_version, "deepened": args.deepen,
                 "extra": used, "head": head_version}

        def keep(network: StudentNetwork, progress: dict) -> None:
            _save_checkpoint(args.checkpoint, network, {**progress, **about})

        network, info = distil(train, val, settings, StudentConfig(), report=print, extra=extra,
                               initial=initial, checkpoint=keep if args.checkpoint else None, head=head)
        info.update(about)
    _write(network, info, args.out)


def _write(network: StudentNetwork, info: dict, out: Path) -> None:
    _, basis = load_full_network()
    out.mkdir(parents=True, exist_ok=True)
    weights = out / f"{STUDENT_NAME}.npz"
    np.savez(weights, **student_arrays(network, basis))
    digest = file_sha256(weights)
    info = {"version": f"{STUDENT_NAME}-{digest[:12]}",
            "sha256": digest, "teacher": model_version(FRONT_END_NAME), "audio": audio_settings(),
            "config": config_dict(network.config), **info}
    (out / f"{STUDENT_NAME}.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {weights} ({info['version']})")


if __name__ == "__main__":
    main()
