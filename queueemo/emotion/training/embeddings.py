"""Fill the v2 (or v2-lite, or distillation mel) feature cache of the training data with several processes.

musicnn costs ~0.1 CPU-s per second of audio, so the ~20 hours of training audio are embedded once,
in parallel, into the same cache the loaders in ``datasets`` read. Workers are *spawned* (a pool
forked after torch has started its threads deadlocks) and run torch on one thread each.
"""

from __future__ import annotations

import csv
import logging
import multiprocessing
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from queueemo.audio import is_audio_path
from queueemo.emotion.training.datasets import (
    V2_EXCERPTS,
    cache_folder,
    cache_name,
    compute_features,
    render_midi,
)
from queueemo.errors import QueueemoError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """One file to embed: an audio path, or a MIDI member of emopia's zip to render first."""

    target: Path
    audio: Path | None = None
    archive: Path | None = None
    member: str | None = None
    soundfont: Path | None = None
    excerpt: tuple[int, int | None] = (0, None)
    front: str = "v2"


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def run_job(job: Job) -> str | None:
    """Embed one file into its cache entry; the error as text if it is not usable audio."""
    try:
        if job.audio is not None:
            features = compute_features(job.audio, job.front, job.excerpt)
        else:
            assert job.archive and job.member and job.soundfont
            with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(job.archive) as archive:
                midi, wav = Path(tmp) / "clip.mid", Path(tmp) / "clip.wav"
                midi.write_bytes(archive.read(job.member))
                render_midi(midi, job.soundfont, wav)
                features = compute_features(wav, job.front, job.excerpt)
    except QueueemoError as exc:
        return f"{job.target.name}: {exc}"
    job.target.parent.mkdir(parents=True, exist_ok=True)
    partial = job.target.with_suffix(".partial.npy")
    np.save(partial, features)
    partial.replace(job.target)
    return None


def missing_jobs(root: Path, cache_dir: Path, sets: tuple[str, ...], front: str = "v2") -> list[Job]:
    """Files of the named data sets whose features for ``front`` (v2, v2-lite or mel) are not cached yet."""
    base = cache_dir / cache_folder(front)
    jobs = []
    if "vgmidi" in sets:
        for audio in sorted((root / "vgmidi" / "audio").glob("*.opus")):
            jobs.append(Job(base / "vgmidi" / cache_name(audio), audio=audio,
                            excerpt=V2_EXCERPTS["vgmidi"], front=front))
    if "4q" in sets:
        with (root / "4q" / "metadata.csv").open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                audio = root / "4q" / "audio" / row["Quadrant"] / f"{row['Song']}.opus"
                if audio.exists():
                    jobs.append(Job(base / "4q" / cache_name(audio), audio=audio, excerpt=V2_EXCERPTS["4q"],
                                    front=front))
    if "emopia" in sets:
        archive = root / "emopia" / "midis.zip"
        soundfont = root / "soundfonts" / "J800_Piano.sf2"
        with zipfile.ZipFile(archive) as handle:
            for member in sorted(n for n in handle.namelist() if n.endswith(".mid")):
                target = base / "emopia" / f"{Path(member).stem}.npy"
                jobs.append(Job(target, archive=archive, member=member, soundfont=soundfont,
                                excerpt=V2_EXCERPTS["emopia"], front=front))
    # Interleave the data sets, so that a run stopped early leaves some of each.
    jobs.sort(key=lambda job: zlib.crc32(job.target.name.encode()))
    return [job for job in jobs if not job.target.exists()]


# Cache sub-folder (under each front end's folder) of unlabelled distillation audio (``extra_jobs``).
EXTRA_FOLDER = "extra"


def audio_files(folders: list[Path]) -> list[Path]:
    """Audio files (by extension, as the library scan picks them) under ``folders``, sorted, each once."""
    found = {path.resolve() for folder in folders for path in folder.rglob("*")
             if is_audio_path(path) and path.is_file()}
    return sorted(found)


def extra_jobs(files: list[Path], cache_dir: Path, fronts: tuple[str, ...] = ("mel", "v2"),
               max_windows: int | None = None) -> list[Job]:
    """Uncached jobs of unlabelled audio ``files`` (the first ``max_windows`` windows of each, or
    whole files) for each front end, into ``<front folder>/extra/``."""
    return [job for front in fronts for audio in files
            if not (job := Job(cache_dir / cache_folder(front) / EXTRA_FOLDER / cache_name(audio),
                               audio=audio, excerpt=(0, max_windows), front=front)).target.exists()]


def fill_cache(root: Path, cache_dir: Path, sets: tuple[str, ...], jobs: int = 2,
               progress: Callable[[int, int], None] | None = None, front: str = "v2") -> list[str]:
    """Embed every uncached file of ``sets``; returns one line per file that could not be used."""
    return run_jobs(missing_jobs(root, cache_dir, sets, front), jobs, progress)


def run_jobs(todo: list[Job], jobs: int = 2, progress: Callable[[int, int], None] | None = None) -> list[str]:
    """Run ``todo`` in ``jobs`` spawned workers; returns one line per file that could not be used."""
    errors: list[str] = []
    if not todo:
        return errors
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max(1, jobs), mp_context=context, initializer=_init_worker) as pool:
        futures = [pool.submit(run_job, job) for job in todo]
        for done, future in enumerate(as_completed(futures), 1):
            if (error := future.result()) is not None:
                log.warning("skipped %s", error)
                errors.append(error)
            if progress:
                progress(done, len(todo))
    return errors
