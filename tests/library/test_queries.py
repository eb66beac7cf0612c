"""The read API the picker and daemon use, on rows written directly."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from queueemo.library import (
    Library,
    Track,
    display_path,
    get_track_by_path,
    iter_candidates,
    library_status,
    trajectory,
)
from queueemo.library.db import encode_trajectory


def _add(library: Library, path: str, status: str = "ok", **values) -> None:
    with library.session() as session:
        session.add(Track(path=path, root=os.path.dirname(path), rel_path=os.path.basename(path),
                          size=1, mtime_ns=1, status=status, **values))


def test_candidates_are_the_analysed_tracks_with_their_opening(library: Library) -> None:
    _add(library, "/m/a.flac", artist="Ann", genre="Jazz", opening_arousal=0.5, opening_valence=-0.25)
    _add(library, "/m/b.flac", status="failed", error="empty file")
    _add(library, "/m/c.flac", status="pending")
    with library.session() as session:
        [candidate] = list(iter_candidates(session))
        status = library_status(session, model_version="v2")
    assert candidate[1:] == ("/m/a.flac", "Ann", "Jazz", 0.5, -0.25)
    assert (status.total, status.analysed, status.failed, status.pending, status.outdated) == (3, 1, 1, 1, 1)


def test_trajectory_round_trips_in_half_precision(library: Library) -> None:
    points = np.array([[0.1234, -0.5], [0.9, 0.33]], dtype=np.float32)
    _add(library, "/m/a.flac", trajectory=encode_trajectory(points))
    with library.session() as session:
        track = get_track_by_path(session, "/m/a.flac")
        np.testing.assert_allclose(trajectory(track), points, atol=1e-3)
        assert trajectory(Track()).shape == (0, 2)


def test_track_is_found_through_a_symlinked_folder(library: Library, tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    _add(library, str(tmp_path / "real" / "a.mp3"))
    with library.session() as session:
        assert get_track_by_path(session, tmp_path / "link" / "a.mp3") is not None
        assert get_track_by_path(session, tmp_path / "real" / "b.mp3") is None


def test_display_path_is_one_printable_line() -> None:
    assert display_path("/m/été.mp3") == "/m/été.mp3"
    assert display_path(os.fsdecode(b"/m/caf\xe9.mp3")) == "/m/caf\\xe9.mp3"
    assert display_path("/m/two\nlines.mp3") == "/m/two\\nlines.mp3"
