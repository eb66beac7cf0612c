"""Incremental candidate loading: the change log written by triggers, applied to the compact table."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import sqlalchemy as sa

from queueemo.candidates import CandidateTable
from queueemo.config import MpdSettings, Settings
from queueemo.library import Library, Track
from queueemo.library.candidates import Loaded, load_all, load_changes, prune_changes
from queueemo.player import Player
from queueemo.queueing import Queuer


def _add(library: Library, name: str, status: str = "ok", **values) -> int:
    values = {"opening_arousal": 0.1, "opening_valence": -0.2, "artist": "Ann", **values}
    with library.session() as session:
        track = Track(path=f"/music/{name}", root="/music", rel_path=name, size=1, mtime_ns=1,
                      status=status, **values)
        session.add(track)
        session.flush()
        return track.id


def _update(library: Library, track_id: int, **values) -> None:
    with library.session() as session:
        session.execute(sa.update(Track).where(Track.id == track_id).values(**values))


def _columns(table: CandidateTable) -> dict[str, object]:
    """Everything a table holds, comparable across tables with their own name codes."""
    return {
        "ids": table.ids.tolist(), "paths": list(table.paths), "uris": list(table.uris),
        "artists": list(table.artists), "genres": list(table.genres), "albums": table.album.tolist(),
        "recordings": table.recording.tolist(), "opening": table.opening.tolist(),
        "acoustics": np.nan_to_num(table.acoustics, nan=-999.0).tolist(),
    }


def _full(library: Library) -> Loaded:
    with library.session() as session:
        return load_all(session, "/music", 0.0)


def _changes(library: Library, loaded: Loaded) -> Loaded | None:
    with library.session() as session:
        return load_changes(session, loaded, 0.0)


def test_applied_changes_equal_a_full_load(library: Library) -> None:
    ids = [_add(library, f"{n}.ogg", artist=f"Artist {n % 3}", album="One", title=f"Song {n}",
                duration_s=100.0 + n) for n in range(6)]
    pending = _add(library, "pending.ogg", status="pending")
    before = _full(library)
    assert len(before.table) == 6
    _add(library, "new.ogg", artist="Bo", genre="Jazz", opening_lufs=-14.0)  # a new analysed track
    _update(library, ids[0], artist="Cy", title="Other", opening_arousal=0.9)  # re-tagged, re-analysed
    _update(library, ids[1], path=os.fsencode("/music/moved/1.ogg"), rel_path=b"moved/1.ogg")  # moved
    _update(library, ids[2], status="pending")  # changed on disk: no longer a candidate
    _update(library, pending, status="ok", opening_arousal=0.5, opening_valence=0.5)  # analysed now
    _update(library, ids[4], opening_onsets=3.0, ending_onsets=0.5)  # only its onsets (migration 0006)
    with library.session() as session:
        session.execute(sa.delete(Track).where(Track.id == ids[3]))  # removed from disk
    updated = _changes(library, before)
    assert updated is not None
    after = _full(library)
    assert _columns(updated.table) == _columns(after.table)
    assert list(updated.table.paths) == ["/music/0.ogg", "/music/moved/1.ogg", "/music/4.ogg",
                                         "/music/5.ogg", "/music/pending.ogg", "/music/new.ogg"]
    assert updated.table.artists[0] == "Cy"
    assert _changes(library, updated).table is updated.table  # nothing new: the same table


def test_an_unrelated_write_logs_no_change(library: Library) -> None:
    track = _add(library, "a.ogg")
    loaded = _full(library)
    _update(library, track, claimed_by="worker", mtime_ns=5)  # columns the picker does not read
    unchanged = _changes(library, loaded)
    assert unchanged is not None and unchanged.marker == loaded.marker


def test_a_reader_behind_the_pruned_log_loads_everything(library: Library) -> None:
    _add(library, "a.ogg")
    loaded = _full(library)
    for name in ("b.ogg", "c.ogg", "d.ogg"):
        _add(library, name)
    with library.session() as session:
        assert prune_changes(session, keep=1) == 3
    assert _changes(library, loaded) is None


def test_a_change_committed_after_a_later_one_is_still_applied(library: Library) -> None:
    """PostgreSQL: a transaction holding a lower seq commits after a higher one was read."""
    if library.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: seqs commit in order")
    loaded = _full(library)
    insert = sa.insert(Track.__table__)
    row = {"root": b"/music", "size": 1, "mtime_ns": 1, "status": "ok", "opening_arousal": 0.0,
           "opening_valence": 0.0}
    with library.engine.connect() as slow:
        slow.execute(insert.values(path=b"/music/slow.ogg", rel_path=b"slow.ogg", **row))  # lower seq
        _add(library, "quick.ogg")  # higher seq, committed first
        between = _changes(library, loaded)
        assert between is not None and list(between.table.uris) == ["quick.ogg"]
        slow.commit()
    after = _changes(library, between)
    assert after is not None and sorted(after.table.uris) == ["quick.ogg", "slow.ogg"]


def test_the_queuer_reads_only_the_changes_after_a_reload(library: Library,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    _add(library, "a.ogg")
    settings = Settings(mpd=MpdSettings(music_directory="/music"))
    queuer = Queuer(library, Player(settings.mpd), settings.picker, settings.arc_state_path)
    first, _ = queuer.candidates()
    assert queuer.candidates()[0] is first  # no reload asked: nothing read
    _add(library, "b.ogg")
    with caplog.at_level(logging.INFO, logger="queueemo.queueing"):
        queuer.reload()
        candidates, reasons = queuer.candidates()
    assert sorted(candidates.uris) == ["a.ogg", "b.ogg"] and list(reasons) == [0, 0]
    assert "updated to 2 candidates" in caplog.text
    queuer.reload(full=True)
    with caplog.at_level(logging.INFO, logger="queueemo.queueing"):
        assert len(queuer.candidates()[0]) == 2
    assert "loaded 2 candidates" in caplog.text
