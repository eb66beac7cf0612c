"""Library roots by name: one index, the same music mounted at different places."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from queueemo.errors import QueueemoError
from queueemo.library import ScanOptions, Track, get_track_by_path, load_candidates, open_library, scan
from queueemo.library.roots import Roots


def test_paths_map_between_names_and_mount_points() -> None:
    roots = Roots.parse(["nas=/mnt/nas/music", "live=/mnt/nas/music/live"])
    assert roots.stored("/mnt/nas/music/a/b.ogg") == "nas:/a/b.ogg"
    assert roots.stored("/mnt/nas/music/live/c.ogg") == "live:/c.ogg"  # the deeper root wins
    assert roots.stored("/mnt/nas/music") == "nas:"
    assert roots.stored("/mnt/nas/musicals/d.ogg") == "/mnt/nas/musicals/d.ogg"
    assert roots.local("nas:/a/b.ogg") == "/mnt/nas/music/a/b.ogg"
    assert roots.local("other:/x.ogg") == "other:/x.ogg"  # not mapped here: stays stored
    other = Roots.parse(["nas=/Volumes/music"])
    assert other.local(roots.stored("/mnt/nas/music/é\udce9.ogg")) == "/Volumes/music/é\udce9.ogg"
    for bad in (["nas"], ["=/x"], ["a b=/x"], ["nas=/x", "nas=/y"]):
        with pytest.raises(QueueemoError, match="root_names"):
            Roots.parse(bad)


@pytest.fixture
def two_mounts(tmp_path: Path, make_audio: Callable[..., Path]) -> tuple[Path, Path, list[Path]]:
    """One folder of real audio, reachable at two mount points (symlinks), like one NAS share."""
    files = [make_audio(f"share/{name}", seconds=1, freq=f) for name, f in
             (("a.wav", 220.0), ("sub/b.wav", 330.0), ("c.wav", 440.0))]
    (tmp_path / "mnt").mkdir()
    (tmp_path / "mnt" / "here").symlink_to(tmp_path / "share")
    (tmp_path / "mnt" / "there").symlink_to(tmp_path / "share")
    return tmp_path / "mnt" / "here", tmp_path / "mnt" / "there", files


@pytest.mark.usefixtures("clip_model")
def test_a_track_analysed_on_one_machine_is_found_on_another(db_url: str, two_mounts) -> None:
    here, there, files = two_mounts
    with open_library(db_url, roots=Roots.parse([f"music={here}"])) as first:
        assert scan(first, [here], ScanOptions(jobs=1)).analysed == len(files)
    with open_library(db_url, roots=Roots.parse([f"music={there}"])) as second:
        summary = scan(second, [there], ScanOptions(jobs=1))
        assert (summary.analysed, summary.unchanged, summary.removed) == (0, len(files), 0)
        with second.session() as session:
            track = get_track_by_path(session, there / "sub" / "b.wav")
            assert track is not None and track.status == "ok" and track.path == str(there / "sub/b.wav")
            columns = load_candidates(session, str(there))
            stored = session.execute(sa.select(sa.type_coerce(Track.path, sa.LargeBinary))).scalars()
            assert sorted(map(bytes, stored)) == [b"music:/a.wav", b"music:/c.wav", b"music:/sub/b.wav"]
        assert sorted(columns.paths) == sorted(str(there / p) for p in ("a.wav", "c.wav", "sub/b.wav"))
        assert sorted(columns.uris) == ["a.wav", "c.wav", "sub/b.wav"]  # MPD's music_directory = there
    with open_library(db_url) as unnamed, unnamed.session() as session:  # no mapping: stored form
        assert sorted(load_candidates(session).paths) == ["music:/a.wav", "music:/c.wav", "music:/sub/b.wav"]


def test_naming_a_root_later_keeps_its_tracks(db_url: str, two_mounts) -> None:
    here, there, _ = two_mounts
    with open_library(db_url) as library, library.session() as session:
        session.add(Track(path=str(here / "a.wav"), root=str(here), rel_path="a.wav", size=1, mtime_ns=1,
                          status="ok", opening_arousal=0.1, opening_valence=0.2))
    with open_library(db_url, roots=Roots.parse([f"music={here}"])):
        pass  # opening adopts the name
    with open_library(db_url, roots=Roots.parse([f"music={there}"])) as other, other.session() as session:
        track = get_track_by_path(session, there / "a.wav")
        assert track is not None and (track.root, track.opening_valence) == (str(there), 0.2)


def test_worker_without_the_root_name_claims_nothing(postgres, two_mounts, tmp_path: Path) -> None:
    here, there, _ = two_mounts
    url = postgres.new_database()
    with open_library(url, roots=Roots.parse([f"music={here}"])) as library, library.session() as session:
        session.add(Track(path=str(here / "a.wav"), root=str(here), rel_path="a.wav", size=1, mtime_ns=1))
    result = subprocess.run(
        [sys.executable, "-c", "from queueemo.cli import main; main()", "scan", "--worker", str(there),
         "--db", url], capture_output=True, text=True, timeout=120, env={**os.environ},
    )
    assert result.returncode == 1
    assert "has no root name" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    with open_library(url) as library, library.session() as session:
        assert session.execute(sa.select(Track.status, Track.claimed_by)).all() == [("pending", None)]


def test_plain_scan_without_the_root_name_scans_nothing(db_url: str, two_mounts) -> None:
    """A `scan` (not --worker) on a machine missing root_names moved every named track back to its
    absolute path, undoing the naming for every other machine."""
    here, there, _ = two_mounts
    with open_library(db_url, roots=Roots.parse([f"music={here}"])) as library, library.session() as session:
        session.add(Track(path=str(here / "a.wav"), root=str(here), rel_path="a.wav", size=1, mtime_ns=1,
                          status="ok", opening_arousal=0.1, opening_valence=0.2))
    result = subprocess.run(
        [sys.executable, "-c", "from queueemo.cli import main; main()", "scan", "--jobs", "1", str(there),
         "--db", db_url], capture_output=True, text=True, timeout=120, env={**os.environ},
    )
    assert result.returncode == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "has no root name" in lines[0] and "scanning nothing" in lines[0]
    with open_library(db_url) as library, library.session() as session:
        stored = session.execute(sa.select(sa.type_coerce(Track.path, sa.LargeBinary))).scalars()
        assert list(map(bytes, stored)) == [b"music:/a.wav"]


def test_the_daemons_rescan_without_the_root_name_rescans_nothing(db_url: str, two_mounts) -> None:
    """The daemon's watcher and scheduled rescans did the same as a plain scan (see above)."""
    from queueemo.library.watcher import Rescanner

    here, there, _ = two_mounts
    with open_library(db_url, roots=Roots.parse([f"music={here}"])) as library, library.session() as session:
        session.add(Track(path=str(here / "a.wav"), root=str(here), rel_path="a.wav", size=1, mtime_ns=1,
                          status="ok", opening_arousal=0.1, opening_valence=0.2))
    failures: list[QueueemoError] = []
    changed: list[set[str]] = []
    with open_library(db_url) as library:
        Rescanner(library, [str(there)], ScanOptions(jobs=1), changed.append, failures.append)()
        with library.session() as session:
            stored = session.execute(sa.select(sa.type_coerce(Track.path, sa.LargeBinary))).scalars()
            assert list(map(bytes, stored)) == [b"music:/a.wav"]
    assert [str(f) for f in failures] and "has no root name" in str(failures[0]) and not changed
