"""Pictures from the index: tracks' emotion over time, and the queue as a path in the A–V plane.

Imported only by ``queueemo plot``; matplotlib (the ``plot`` extra) is loaded with the Agg backend, so
no display is needed.
"""

from __future__ import annotations

import itertools
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from queueemo.audio import WINDOW_SECONDS
from queueemo.errors import QueueemoError

if TYPE_CHECKING:
    from queueemo.library.db import Library
    from queueemo.player import Player

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Track:
    name: str
    trajectory: np.ndarray
    sound_start_s: float | None
    ending_start_s: float | None
    opening: tuple[float, float] | None
    closing: tuple[float, float] | None
    opening_lufs: float | None
    ending_lufs: float | None


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise QueueemoError("plot needs matplotlib: pip install 'queueemo[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _read(library: Library, path: Path | str) -> _Track | None:
    from queueemo.library import get_track_by_path
    from queueemo.library.db import decode_trajectory

    with library.session() as session:
        track = get_track_by_path(session, path)
        if track is None or track.status != "ok":
            return None

        def pair(a: float | None, v: float | None) -> tuple[float, float] | None:
            return None if a is None or v is None else (a, v)

        return _Track(os.path.basename(str(path)), decode_trajectory(track.trajectory),
                      track.sound_start_s, track.ending_start_s,
                      pair(track.opening_arousal, track.opening_valence),
                      pair(track.closing_arousal, track.closing_valence),
                      track.opening_lufs, track.ending_lufs)


def plot_tracks(library: Library, files: list[Path], out: Path) -> int:
    """Arousal and valence over time of each analysed file, sound start and ending marked.

    Files that are not analysed are skipped with a warning; returns how many were drawn.
    """
    tracks, skipped = [], []
    for path in files:
        track = _read(library, path)
        if track is None:
            skipped.append(path)
        else:
            tracks.append(track)
    if not tracks:
        raise QueueemoError("none of the files is an analysed track of the index (run `queueemo scan`)")
    for path in skipped:  # only beside a picture: with none, the error above says it all
        log.warning("%s is not an analysed track of the index; skipped", path)
    plt = _pyplot()
    figure, axes = plt.subplots(len(tracks), 1, figsize=(10, 2.6 * len(tracks)), squeeze=False)
    for axis, track in zip(axes[:, 0], tracks, strict=True):
        seconds = (np.arange(len(track.trajectory)) + 0.5) * WINDOW_SECONDS
        axis.plot(seconds, track.trajectory[:, 0], label="arousal", color="tab:red")
        axis.plot(seconds, track.trajectory[:, 1], label="valence", color="tab:blue")
        for at, label in ((track.sound_start_s, "sound starts"), (track.ending_start_s, "ending")):
            if at is not None:
                axis.axvline(at, color="grey", linestyle="--")
                axis.annotate(label, (at, 0.9), fontsize=8, color="grey")
        axis.set_ylim(-1, 1)
        axis.set_title(track.name, fontsize=9)
        axis.set_xlabel("seconds")
        axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    _save(plt, figure, out)
    return len(tracks)


def plot_queue(library: Library, player: Player, out: Path) -> int:
    """MPD's queue in the arousal–valence plane: each track from opening to closing, each transition
    drawn from one track's closing to the next one's opening with its emotional (and loudness) jump.
    """
    music = player.music_directory()
    tracks, skipped = [], []
    for entry in player.queue().entries:
        track = _read(library, os.path.join(music, entry.uri) if music else entry.uri)
        if track is None or track.opening is None or track.closing is None:
            skipped.append(entry.uri)
        else:
            tracks.append(track)
    if not tracks:
        raise QueueemoError("no analysed track in MPD's queue to draw")
    for uri in skipped:
        log.warning("%s is not analysed; left out of the picture", uri)
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 7))
    for number, track in enumerate(tracks, start=1):
        (a0, v0), (a1, v1) = track.opening, track.closing
        axis.plot([v0, v1], [a0, a1], color="tab:blue", linewidth=2)
        axis.annotate(f"{number} {track.name}", (v0, a0), fontsize=7)  # at its opening
    for before, after in itertools.pairwise(tracks):
        (a0, v0), (a1, v1) = before.closing, after.opening
        axis.annotate("", (v1, a1), (v0, a0), arrowprops={"arrowstyle": "->", "color": "tab:orange"})
        label = f"{np.hypot(a1 - a0, v1 - v0):.2f}"
        if before.ending_lufs is not None and after.opening_lufs is not None:
            label += f" / {after.opening_lufs - before.ending_lufs:+.1f} LU"
        axis.annotate(label, ((v0 + v1) / 2, (a0 + a1) / 2), fontsize=7, color="tab:orange")
    axis.axhline(0, color="grey", linewidth=0.5)
    axis.axvline(0, color="grey", linewidth=0.5)
    axis.set_xlim(-1, 1)
    axis.set_ylim(-1, 1)
    axis.set_xlabel("valence")
    axis.set_ylabel("arousal")
    axis.set_title("queue: tracks (blue, numbered at the opening, → closing) and transitions\n"
                   "(orange: emotion jump / loudness jump, closing → next opening)", fontsize=9)
    _save(plt, figure, out)
    return len(tracks)


def _save(plt, figure, out: Path) -> None:
    """Write the PNG; a folder that is missing or not writable is one clear error."""
    try:
        figure.savefig(out, format="png")
    except OSError as exc:
        raise QueueemoError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        plt.close(figure)
