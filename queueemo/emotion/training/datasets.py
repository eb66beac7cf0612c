"""Training data from ``../shared/data``: features, targets and splits disjoint by song, piece or artist.

Features come from the chosen front end exactly as at inference time (``seed``: log-mel windows from
``queueemo.audio``; ``v2``: musicnn embedding + descriptors from ``queueemo.emotion.embedding``),
cached as float16 ``.npy`` files so that training runs do not decode again (``training.embeddings``
fills the v2 cache with several processes). Splits are deterministic functions of a group name (the
piece for vgmidi, artist for 4q and emomusic), so the same piece never lands on both sides. (vgmidi's
pieces come from only 13 games: a split by game would leave two games to test on, too few to measure.)
"""

from __future__ import annotations

import csv
import hashlib
import logging
import shutil
import subprocess
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from queueemo.audio import WINDOW_SECONDS, iter_log_mel
from queueemo.errors import AudioError, QueueemoError

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
# Cache sub-folder per front end (the seed's log-mel cache keeps its original place). The v2 name
# says what an entry holds: musicnn embedding + the 4 descriptors of ``emotion.descriptors``, of whole
# vgmidi and 4q files. (The earlier ``musicnn`` folder held embeddings only, of 12-s excerpts of the 4q
# training and validation clips: it is no longer read and can be deleted.)
CACHE_FOLDERS = {"seed": "", "v2": "musicnn-whole-desc4"}
# The student's input, for distillation: musicnn's 96-band mel power (float16, before the log), whole
# vgmidi and 4q files and the emopia excerpts, frames exactly as ``embedding.iter_mel`` computes them.
MEL_FOLDER = "musicnn-mel96-power-f16"
# Share of groups per split: validation drives early stopping, test is only read by `evaluate`.
SPLIT_SHARES = (0.7, 0.15, 0.15)
QUADRANT_SIGNS = {"Q1": (1, 1), "Q2": (1, -1), "Q3": (-1, -1), "Q4": (-1, 1)}


def cache_folder(front: str, model_dir: Path | None = None) -> str:
    """Cache sub-folder of a front end's features; ``v2-lite``'s is named for the version of the student
    (in ``model_dir``, default the installed one: a retrained student writes a new folder), ``mel`` is
    the distillation input."""
    if front == "mel":
        return MEL_FOLDER
    if front == "v2-lite":
        from queueemo.assets import read_info
        from queueemo.emotion.numpy_student import STUDENT_NAME

        return f"{read_info(STUDENT_NAME, model_dir)['version']}-whole-desc4"
    return CACHE_FOLDERS[front]


def split_of(group: str) -> str:
    """Deterministic split for a group name (stable across machines and Python versions)."""
    bucket = int(hashlib.sha1(group.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    if bucket < SPLIT_SHARES[0]:
        return "train"
    return "val" if bucket < SPLIT_SHARES[0] + SPLIT_SHARES[1] else "test"


@dataclass
class Track:
    """One annotated recording: its log-mel windows and labels."""

    key: str
    group: str
    features: np.ndarray  # (n, 44, 128) log-mel (seed) or (n, 204) embedding + descriptors (v2), float16
    targets: np.ndarray | None = None  # (n, 2) per-window arousal/valence (vgmidi)
    quadrant: str | None = None  # "Q1".."Q4" (4q)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def cache_name(audio_path: Path) -> str:
    """File name of an audio file's cached features (the path's CRC keeps equal stems apart)."""
    return f"{audio_path.stem}-{zlib.crc32(str(audio_path).encode()):08x}.npy"


# Windows of a file v2 embeds, (first window, windows) per data set: vgmidi pieces and 4q clips whole in
# every split (the compact musicnn costs ~15 CPU-s per audio-hour, so the ~12 h cost minutes), so
# training, validation and evaluation see what analysis sees; emopia renders a 12-s excerpt.
V2_EXCERPTS = {"vgmidi": (0, None), "4q": (0, None), "emopia": (0, 24)}


def compute_features(audio_path: Path, front: str, excerpt: tuple[int, int | None] = (0, None),
                     model_dir: Path | None = None) -> np.ndarray:
    """Model input of one file (or of windows ``excerpt`` = (first, count) of it) for a front end
    (or ``mel``: the distillation input, see ``MEL_FOLDER``); v2-lite's student from ``model_dir``."""
    if front in ("v2", "v2-lite"):
        from queueemo.emotion.embedding import embed_file
        from queueemo.emotion.training.student import load_student

        first, count = excerpt
        student = load_student(model_dir) if front == "v2-lite" else None
        return embed_file(audio_path, first_window=first, max_windows=count,
                          front_end=student).astype(np.float16)
    if front == "mel":
        from queueemo.emotion.training.distil import excerpt_mel

        return excerpt_mel(audio_path, excerpt)
    return np.concatenate(list(iter_log_mel(audio_path))).astype(np.float16)


def _features(audio_path: Path, cache_dir: Path, name: str | None = None, front: str = "seed",
              excerpt: tuple[int, int | None] = (0, None), model_dir: Path | None = None) -> np.ndarray:
    cached = cache_dir / (name or cache_name(audio_path))
    if cached.exists():
        return np.load(cached)
    features = compute_features(audio_path, front, excerpt if front != "seed" else (0, None), model_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".partial.npy")
    np.save(partial, features)
    partial.replace(cached)  # a killed run never leaves a half-written cache entry
    return features


def _count_windows(audio_path: Path) -> int:
    """Windows ``decode_windows`` yields for a file, from its header (a trailing half window counts)."""
    import soundfile

    seconds = soundfile.info(str(audio_path)).duration
    whole = int(seconds // WINDOW_SECONDS)
    return whole + int(seconds - whole * WINDOW_SECONDS >= 0.5 * WINDOW_SECONDS)


def _window_targets(rows: list[dict[str, str]], n_windows: int) -> np.ndarray:
    """Per-window (arousal, valence) from per-measure annotations, stretched to the audio length.

    The annotation tool played ``duration_s / measures`` seconds per measure, so the audio may differ
    by a few percent; measure centres are rescaled to the rendered length and interpolated linearly.
    """
    starts = np.array([float(r["start_s"]) for r in rows])
    ends = np.array([float(r["end_s"]) for r in rows])
    scale = n_windows * WINDOW_SECONDS / ends[-1]
    centres = (starts + ends) / 2 * scale
    times = (np.arange(n_windows) + 0.5) * WINDOW_SECONDS
    arousal = np.interp(times, centres, [float(r["arousal"]) for r in rows])
    valence = np.interp(times, centres, [float(r["valence"]) for r in rows])
    return np.stack([arousal, valence], axis=1).astype(np.float32)


def load_vgmidi(root: Path, cache_dir: Path, progress: Callable[[str], None] | None = None, *,
                front: str = "seed", model_dir: Path | None = None) -> list[Track]:
    """VGMIDI: piano renders with continuous per-measure arousal/valence (v2-lite: the student in
    ``model_dir``, default the installed one)."""
    base = root / "vgmidi"
    pieces = _read_csv(base / "pieces.csv")
    by_piece: dict[str, list[dict[str, str]]] = {}
    for row in _read_csv(base / "dynamic.csv"):
        by_piece.setdefault(row["piece"], []).append(row)
    tracks = []
    for piece in pieces:
        audio = base / "audio" / f"{piece['piece']}.opus"
        if not audio.exists() or piece["piece"] not in by_piece:
            continue
        features = _features(audio, cache_dir / cache_folder(front, model_dir) / "vgmidi", front=front,
                             excerpt=V2_EXCERPTS["vgmidi"], model_dir=model_dir)
        rows = sorted(by_piece[piece["piece"]], key=lambda r: float(r["start_s"]))
        # Targets are stretched over the whole rendering, then cut to the embedded excerpt.
        targets = _window_targets(rows, max(len(features), _count_windows(audio)))
        tracks.append(Track(piece["piece"], piece["piece"], features, targets=targets[: len(features)]))
        if progress:
            progress(piece["piece"])
    return tracks


def load_4q(root: Path, cache_dir: Path, progress: Callable[[str], None] | None = None, *,
            front: str = "seed", model_dir: Path | None = None) -> list[Track]:
    """4Q: real recordings, one Russell quadrant per 30 s excerpt; grouped by artist (v2-lite: the
    student in ``model_dir``, default the installed one)."""
    base = root / "4q"
    tracks = []
    for row in _read_csv(base / "metadata.csv"):
        audio = base / "audio" / row["Quadrant"] / f"{row['Song']}.opus"
        if not audio.exists():
            continue
        artist = row["Artist"].strip().lower()
        features = _features(audio, cache_dir / cache_folder(front, model_dir) / "4q", front=front,
                             excerpt=V2_EXCERPTS["4q"], model_dir=model_dir)
        tracks.append(Track(row["Song"], artist, features, quadrant=row["Quadrant"]))
        if progress:
            progress(row["Song"])
    return tracks


def render_midi(midi: Path, soundfont: Path, wav: Path) -> None:
    """Render a MIDI file to a 44.1-kHz wav with fluidsynth."""
    command = ["fluidsynth", "-ni", "-q", "-g", "0.6", "-r", "44100", "-F", str(wav),
               str(soundfont), str(midi)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)


def load_emopia(root: Path, cache_dir: Path, progress: Callable[[str], None] | None = None, *,
                front: str = "seed") -> list[Track]:
    """EMOPIA: pop-piano MIDI clips with a quadrant in the file name, rendered with fluidsynth and the
    shared piano soundfont; clips of one song are grouped so they share a split."""
    if shutil.which("fluidsynth") is None:
        raise QueueemoError("emopia needs fluidsynth to render its MIDI (apt-get install fluidsynth)")
    soundfont = root / "soundfonts" / "J800_Piano.sf2"
    tracks = []
    with zipfile.ZipFile(root / "emopia" / "midis.zip") as archive, tempfile.TemporaryDirectory() as tmp:
        for name in sorted(n for n in archive.namelist() if n.endswith(".mid")):
            stem = Path(name).stem  # Q1_<song>_<clip>
            quadrant, song = stem.split("_")[0], stem[3:].rsplit("_", 1)[0]
            cached = cache_dir / cache_folder(front) / "emopia" / f"{stem}.npy"
            if not cached.exists():
                midi = Path(tmp) / "clip.mid"
                midi.write_bytes(archive.read(name))
                wav = Path(tmp) / f"{stem}.wav"
                render_midi(midi, soundfont, wav)
                try:
                    features = _features(wav, cached.parent, cached.name, front, V2_EXCERPTS["emopia"])
                except AudioError:
                    continue  # an empty render (a clip of silence) carries no emotion to learn
                finally:
                    wav.unlink(missing_ok=True)
            else:
                features = np.load(cached)
            tracks.append(Track(stem, song, features, quadrant=quadrant))
            if progress:
                progress(stem)
    return tracks


@dataclass
class Curve:
    """One emomusic song: arousal/valence at 2 Hz."""

    key: str
    group: str
    points: np.ndarray  # (61, 2)


def load_emomusic(root: Path) -> list[Curve]:
    """emomusic ("1000 songs"): continuous 2 Hz annotations, grouped by artist."""
    base = root / "emomusic" / "annotations"
    arousal = {r["song_id"]: r for r in _read_csv(base / "arousal_cont_average.csv")}
    valence = {r["song_id"]: r for r in _read_csv(base / "valence_cont_average.csv")}
    artists = {}
    for row in _read_csv(base / "songs_info.csv"):
        artists[row["song_id"].strip()] = row["Artist"].strip().lower()
    curves = []
    for song, arow in arousal.items():
        if song not in valence:
            continue
        columns = [c for c in arow if c.startswith("sample_")]
        a = np.array([float(arow[c]) for c in columns if arow[c] not in ("", None)])
        v = np.array([float(valence[song][c]) for c in columns if valence[song].get(c) not in ("", None)])
        n = min(len(a), len(v))
        if n < 12:
            continue
        curves.append(Curve(song, artists.get(song.strip(), song), np.stack([a[:n], v[:n]], 1)))
    return curves


def require_data(root: Path) -> Path:
    """Check that ``root`` looks like the shared data folder."""
    missing = [name for name in ("vgmidi", "4q", "emomusic") if not (root / name).is_dir()]
    if missing:
        raise QueueemoError(f"{root}: not a queueemo data folder (missing {', '.join(missing)})")
    return root


def by_split(items: list, split: str) -> list:
    """The items whose group falls in ``split``."""
    return [item for item in items if split_of(item.group) == split]


def splits(items: list) -> dict[str, list]:
    """{"train": [...], "val": [...], "test": [...]}."""
    return {split: by_split(items, split) for split in SPLITS}


def load_audio_sets(data_dir: Path, cache_dir: Path, front: str = "seed", extra: tuple[str, ...] = (),
                    report: Callable[[str], None] = lambda _: None,
                    ) -> tuple[dict[str, list[Track]], dict[str, list[Track]]]:
    """vgmidi's curves and 4q's clips as ``front``'s features, each split; a front end other than the
    seed's first embeds, in parallel, what its cache lacks (of the ``extra`` sets too). ``report`` gets
    progress lines and one line per file that could not be used."""
    root = require_data(data_dir)
    if front != "seed":
        from queueemo.emotion.training.embeddings import fill_cache  # it builds on this module

        def embedded(done: int, total: int) -> None:
            if done % 50 == 0 or done == total:
                report(f"  {front} embeddings: {done}/{total} recordings")

        for error in fill_cache(root, cache_dir, ("vgmidi", "4q", *extra), progress=embedded, front=front):
            report(f"skipped {error}")
    counter = {"n": 0}

    def tick(_: str) -> None:
        counter["n"] += 1
        if counter["n"] % 100 == 0:
            report(f"  features: {counter['n']} recordings")

    curves = splits(load_vgmidi(root, cache_dir, tick, front=front))
    clips = splits(load_4q(root, cache_dir, tick, front=front))
    return curves, clips
