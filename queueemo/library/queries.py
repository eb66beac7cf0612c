"""Reading the index: what the picker, the daemon, ``status`` and ``show`` need.

All functions take a ``Session`` from ``Library.session()``; none of them writes.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import Any, NamedTuple

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from queueemo.audio import WINDOW_SECONDS
from queueemo.boundaries import Boundaries
from queueemo.library.db import (
    STATUS_FAILED,
    STATUS_OK,
    STATUS_PENDING,
    Track,
    current_roots,
    decode_trajectory,
)


class CandidateColumns(NamedTuple):
    """The analysed tracks as parallel columns, ready for ``picker.Candidates``."""

    paths: tuple[str, ...]
    uris: tuple[str | None, ...]  # MPD URI, ``None`` where the file is outside MPD's music folder
    artists: tuple[str, ...]
    genres: tuple[str, ...]
    opening: np.ndarray  # (n, 2) float32 opening (arousal, valence)
    albums: tuple[str, ...]  # "albumartist\0album" casefolded artist, "" where the album is unknown
    titles: tuple[str, ...]
    # (n, 6) float64, NaN where unknown: duration_s, ending_start_s, opening_lufs, ending_lufs,
    # opening_brightness, ending_brightness
    acoustics: np.ndarray


@dataclass(frozen=True)
class LibraryStatus:
    """Counts for ``queueemo status``. ``outdated`` tracks are analysed, but by another model."""

    total: int
    analysed: int
    pending: int
    failed: int
    outdated: int
    hours: float


# Plain columns (no ``FsPath`` processing per value): paths arrive as the stored bytes.
_ACOUSTIC_COLUMNS = ("duration_s", "ending_start_s", "opening_lufs", "ending_lufs", "opening_brightness",
                     "ending_brightness")
_CANDIDATE_COLUMNS = sa.table(
    "tracks", *(sa.column(name) for name in ("path", "rel_path", "artist", "genre", "opening_arousal",
                                            "opening_valence", "status", "albumartist", "album", "title",
                                            *_ACOUSTIC_COLUMNS)),
)


def load_candidates(session: Session, music_directory: str | None = None) -> CandidateColumns:
    """Every analysed track with its opening emotion, as columns (100,000 tracks in well under 1 s).

    URIs are paths relative to ``music_directory`` (MPD's), or the stored ``rel_path`` without one;
    paths under named roots are first mapped to this machine's mount points.
    One Core query without ORM rows or per-value type processing; the cyclic GC is paused while
    the ~10⁶ small objects are built.
    """
    table = _CANDIDATE_COLUMNS.c
    query = sa.select(table.path, table.rel_path, table.artist, table.genre, table.opening_arousal,
                      table.opening_valence, table.albumartist, table.album, table.title,
                      *(table[name] for name in _ACOUSTIC_COLUMNS)).where(
        table.status == STATUS_OK, table.opening_arousal.is_not(None), table.opening_valence.is_not(None)
    )
    with _collector_paused():
        rows = session.connection().execute(query).all()
        paths, rel_paths, artists, genres, arousal, valence, albumartists, albums, titles = (
            zip(*(row[:9] for row in rows), strict=True) if rows else ((),) * 9
        )
        acoustics = np.array([row[9:] for row in rows], dtype=np.float64).reshape(
            len(rows), len(_ACOUSTIC_COLUMNS))
        roots = current_roots()
        if roots is not None:  # named roots: this machine's mount points
            paths = tuple(os.fsencode(roots.local(os.fsdecode(p))) for p in paths)
        if music_directory:
            prefix = os.fsencode(os.path.normpath(music_directory)) + b"/"
            cut = len(prefix)
            uris = tuple(os.fsdecode(p[cut:]) if p.startswith(prefix) else None for p in paths)
        else:
            uris = tuple(map(os.fsdecode, rel_paths))
        return CandidateColumns(
            paths=tuple(map(os.fsdecode, paths)),
            uris=uris,
            artists=tuple(a or "" for a in artists),
            genres=tuple(g or "" for g in genres),
            opening=np.column_stack([np.array(arousal, np.float32), np.array(valence, np.float32)])
            .reshape(-1, 2),
            albums=tuple(f"{(albumartist or artist or '').casefold()}\0{album}" if album else ""
                         for albumartist, artist, album in zip(albumartists, artists, albums, strict=True)),
            titles=tuple(t or "" for t in titles),
            acoustics=acoustics,
        )


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic GC: building ~10⁶ small acyclic objects otherwise triggers it over and over."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def trajectory_at(session: Session, path: str) -> np.ndarray:
    """The stored trajectory of the track at ``path`` exactly (empty when it is not analysed)."""
    return decode_trajectory(session.execute(sa.select(Track.trajectory).where(Track.path == path)).scalar())


def get_track_by_path(session: Session, path: str | os.PathLike[str]) -> Track | None:
    """The track stored for ``path`` (made absolute; tried as given, then with symlinks resolved)."""
    absolute = os.path.abspath(os.fspath(path))
    for candidate in dict.fromkeys((absolute, os.path.realpath(absolute))):
        track = session.scalars(sa.select(Track).where(Track.path == candidate)).first()
        if track is not None:
            return track
    return None


def trajectory(track: Track) -> np.ndarray:
    """A track's (n, 2) float32 arousal/valence trajectory at 2 Hz (empty if not analysed)."""
    return decode_trajectory(track.trajectory)


def library_status(session: Session, model_version: str | None = None) -> LibraryStatus:
    """Counts by status, total analysed hours and, given the current model version, outdated tracks.

    One pass over the covering index ``ix_tracks_status_summary`` (a million tracks well under 1 s).
    """
    outdated = (
        sa.func.sum(sa.case((sa.or_(Track.model_version.is_(None),
                                    Track.model_version != model_version), 1), else_=0))
        if model_version is not None else sa.literal(0)
    )
    rows = session.execute(
        sa.select(Track.status, sa.func.count(), sa.func.sum(Track.duration_s), outdated)
        .group_by(Track.status)
    ).all()
    counts = {status: count for status, count, _, _ in rows}
    ok = next((row for row in rows if row[0] == STATUS_OK), None)
    return LibraryStatus(
        total=sum(counts.values()),
        analysed=counts.get(STATUS_OK, 0),
        pending=counts.get(STATUS_PENDING, 0),
        failed=counts.get(STATUS_FAILED, 0),
        outdated=int(ok[3] or 0) if ok else 0,
        hours=float(ok[2] or 0.0) / 3600 if ok else 0.0,
    )


def failures(session: Session) -> list[tuple[str, str]]:
    """``(path, reason)`` of every file that could not be analysed, by path."""
    rows = session.execute(
        sa.select(Track.path, Track.error).where(Track.status == STATUS_FAILED).order_by(Track.path)
    ).all()
    return [(path, error or "unknown error") for path, error in rows]


def display_path(path: str) -> str:
    """``path`` printable on one line: undecodable bytes as ``\\xNN``, control characters escaped."""
    text = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def track_record(track: Track) -> dict[str, Any]:
    """Everything about a track as JSON-ready data (paths made printable), for ``show``."""
    points = trajectory(track)
    summaries = {
        name: None if getattr(track, f"{name}_arousal") is None else {
            "arousal": round(getattr(track, f"{name}_arousal"), 4),
            "valence": round(getattr(track, f"{name}_valence"), 4),
        }
        for name in ("opening", "closing", "mean")
    }
    return {
        "id": track.id,
        "path": display_path(track.path),
        "root": display_path(track.root),
        "rel_path": display_path(track.rel_path),
        "status": track.status,
        "error": track.error,
        "size": track.size,
        "duration_s": track.duration_s,
        "tags": {name: getattr(track, name) for name in
                 ("artist", "albumartist", "album", "title", "genre", "tracknumber")},
        "content_hash": track.content_hash,
        "model_version": track.model_version,
        "analysed_at": track.analysed_at.replace(tzinfo=UTC).isoformat() if track.analysed_at else None,
        **summaries,
        "boundaries": None if track.ending_start_s is None else {
            name: round(getattr(track, name), 2) for name in Boundaries.COLUMNS},
        "window_s": WINDOW_SECONDS,
        "arousal": [round(float(value), 3) for value in points[:, 0]],
        "valence": [round(float(value), 3) for value in points[:, 1]],
    }
