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
    library_status,
    load_candidates,
    trajectory,
    trajectory_at,
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
    _add(library, "/m/d.flac", opening_arousal=None, opening_valence=None)  # analysed by an old version
    with library.session() as session:
        columns = load_candidates(session)
        status = library_status(session, model_version="v2")
    assert tuple(map(tuple, (columns.paths, columns.uris, columns.artists, columns.genres))) == (
        ("/m/a.flac",), ("a.flac",), ("Ann",), ("Jazz",))
    np.testing.assert_array_equal(columns.opening, np.array([[0.5, -0.25]], np.float32))
    assert (status.total, status.analysed, status.failed, status.pending, status.outdated) == (4, 2, 1, 1, 2)


def test_candidate_uris_are_relative_to_the_music_directory(library: Library) -> None:
    odd = os.fsdecode(b"/music/caf\xe9/new\nline.ogg")
    for path in ("/music/x/a.ogg", "/elsewhere/b.ogg", odd):
        _add(library, path, opening_arousal=0.0, opening_valence=0.0)
    with library.session() as session:
        columns = load_candidates(session, "/music/")
        empty = load_candidates(session, "/nothing")
    assert dict(zip(columns.paths, columns.uris, strict=True)) == {
        "/music/x/a.ogg": "x/a.ogg", "/elsewhere/b.ogg": None, odd: odd[len("/music/"):]}
    assert tuple(empty.uris) == (None, None, None)
    assert columns.opening.shape == (3, 2)


def test_trajectory_round_trips_in_half_precision(library: Library) -> None:
    points = np.array([[0.1234, -0.5], [0.9, 0.33]], dtype=np.float32)
    _add(library, "/m/a.flac", trajectory=encode_trajectory(points))
    with library.session() as session:
        track = get_track_by_path(session, "/m/a.flac")
        np.testing.assert_allclose(trajectory(track), points, atol=1e-3)
        np.testing.assert_allclose(trajectory_at(session, "/m/a.flac"), points, atol=1e-3)
        assert trajectory(Track()).shape == (0, 2)
        assert trajectory_at(session, "/m/missing.flac").shape == (0, 2)


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
