"""Reading the index: what the daemon, ``status`` and ``show`` need (candidates: ``candidates.py``).

All functions take a ``Session`` from ``Library.session()``; none of them writes.
"""

from __future__ import annotations

import os
from datetime import UTC
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from queueemo.audio import WINDOW_SECONDS
from queueemo.boundaries import Boundaries
from queueemo.library.db import STATUS_FAILED, Track, decode_trajectory
from queueemo.library.summary import LibraryStatus, status_from_rows


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
    return status_from_rows(session.execute(
        sa.select(Track.status, sa.func.count(), sa.func.sum(Track.duration_s), outdated)
        .group_by(Track.status)
    ).all())


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
            name: None if (value := getattr(track, name)) is None else round(value, 2)
            for name in Boundaries.COLUMNS},  # onsets: None when analysed before they were stored
        "window_s": WINDOW_SECONDS,
        "arousal": [round(float(value), 3) for value in points[:, 0]],
        "valence": [round(float(value), 3) for value in points[:, 1]],
    }
