"""The analysed tracks as a compact ``CandidateTable``: streamed in full, or only what changed since.

Every write that matters to the picker leaves the track's id in ``track_changes`` (database triggers,
migration 0005: scans on other machines count too). A ``Loaded`` table remembers the last ``seq`` it
applied; ``load_changes`` reads the ids logged after it and reloads just those rows.

On PostgreSQL a transaction may commit a lower ``seq`` after a higher one was read; the seqs missing
below the last one read are kept as ``holes`` and asked for again until ``HOLE_TTL_S`` has passed (no
store transaction stays open that long). A log pruned past a reader's mark, or more changes than
``FULL_RELOAD_SHARE`` of the table (a new model re-analysed everything), mean a full load instead.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from queueemo.candidates import ACOUSTIC_COLUMNS, CandidateTable, TableBuilder, Vocabulary
from queueemo.library.db import STATUS_OK, current_roots

log = logging.getLogger(__name__)

CHUNK = 20_000  # rows per streamed batch: bounded memory however large the library
ID_BATCH = 5_000  # ids per ``IN (…)`` when reloading changed rows
HOLE_WINDOW = 10_000  # seqs looked back at for holes on a full load
MAX_HOLES = 1_000
HOLE_TTL_S = 600.0
FULL_RELOAD_SHARE = 0.25
KEEP_CHANGES = 200_000  # log rows kept by ``prune_changes``; a reader further behind loads in full

# Plain columns (no ``FsPath`` processing per value): paths arrive as the stored bytes.
_COLUMNS = ("id", "path", "rel_path", "artist", "genre", "albumartist", "album", "title",
            "opening_arousal", "opening_valence", *ACOUSTIC_COLUMNS)
_TRACKS = sa.table("tracks", *(sa.column(name) for name in (*_COLUMNS, "status")))
_CHANGES = sa.table("track_changes", sa.column("seq"), sa.column("track_id"))


@dataclass(frozen=True)
class Marker:
    """How far the change log was applied: the highest ``seq`` and the (seq, first missed) holes below it."""

    seq: int = 0
    holes: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True)
class Loaded:
    """A candidate table, the log position it reflects, and the music directory its URIs are relative to."""

    table: CandidateTable
    marker: Marker
    music_directory: str | None


def load_all(session: Session, music_directory: str | None, now: float,
             vocabulary: Vocabulary | None = None) -> Loaded:
    """Every analysed track with its opening emotion, streamed ``CHUNK`` rows at a time.

    URIs are paths relative to ``music_directory`` (MPD's), or the stored ``rel_path`` without one;
    paths under named roots are first mapped to this machine's mount points.
    """
    connection = session.connection()
    top = connection.execute(sa.select(sa.func.max(_CHANGES.c.seq))).scalar() or 0
    seen = connection.execute(sa.select(_CHANGES.c.seq).where(_CHANGES.c.seq > top - HOLE_WINDOW)).scalars()
    missing = set(range(max(top - HOLE_WINDOW, 0) + 1, top + 1)).difference(seen)
    builder = TableBuilder(vocabulary)
    query = _candidate_rows().execution_options(yield_per=CHUNK)
    for rows in connection.execute(query).partitions():
        _add_rows(builder, rows, music_directory)
    marker = Marker(top, tuple((seq, now) for seq in sorted(missing)[-MAX_HOLES:]))
    return Loaded(builder.build(), marker, music_directory)


def load_candidates(session: Session, music_directory: str | None = None) -> CandidateTable:
    """Every analysed track as a compact table (``load_all`` without the change-log position)."""
    return load_all(session, music_directory, 0.0).table


def load_changes(session: Session, loaded: Loaded, now: float) -> Loaded | None:
    """``loaded`` brought up to date with the tracks changed since; ``None``: load it all instead."""
    connection = session.connection()
    mark = loaded.marker
    first = connection.execute(sa.select(sa.func.min(_CHANGES.c.seq))).scalar()
    if first is not None and first > mark.seq + 1 and mark.seq:
        log.info("the change log was pruned past this reader: loading every candidate")
        return None
    holes = {seq: since for seq, since in mark.holes if now - since < HOLE_TTL_S}
    condition = _CHANGES.c.seq > mark.seq
    if holes:
        condition = sa.or_(condition, _CHANGES.c.seq.in_(list(holes)))
    changes = connection.execute(sa.select(_CHANGES.c.seq, _CHANGES.c.track_id).where(condition)).all()
    seqs = {seq for seq, _ in changes}
    top = max(seqs | {mark.seq})
    for seq in range(mark.seq + 1, top):
        if seq not in seqs:
            holes[seq] = now
    for seq in seqs:
        holes.pop(seq, None)
    marker = Marker(top, tuple(sorted(holes.items())[-MAX_HOLES:]))
    ids = sorted({track_id for _, track_id in changes})
    if len(ids) > max(FULL_RELOAD_SHARE * len(loaded.table), ID_BATCH):
        log.info("%d tracks changed: loading every candidate", len(ids))
        return None
    builder = TableBuilder(loaded.table.vocabulary)
    for start in range(0, len(ids), ID_BATCH):
        batch = ids[start:start + ID_BATCH]
        _add_rows(builder, connection.execute(_candidate_rows().where(_TRACKS.c.id.in_(batch))).all(),
                  loaded.music_directory)
    table = loaded.table.updated(ids, builder.build()) if ids else loaded.table
    return Loaded(table, marker, loaded.music_directory)


def prune_changes(session: Session, keep: int = KEEP_CHANGES) -> int:
    """Forget all but the newest ``keep`` logged changes; how many were removed."""
    top = session.execute(sa.select(sa.func.max(_CHANGES.c.seq))).scalar() or 0
    result = session.execute(sa.delete(_CHANGES).where(_CHANGES.c.seq <= top - keep))
    return result.rowcount or 0  # type: ignore[attr-defined]


def _candidate_rows() -> sa.Select:
    table = _TRACKS.c
    return sa.select(*(table[name] for name in _COLUMNS)).where(
        table.status == STATUS_OK, table.opening_arousal.is_not(None), table.opening_valence.is_not(None))


def _add_rows(builder: TableBuilder, rows: Sequence[sa.Row], music_directory: str | None) -> None:
    """One batch of ``_COLUMNS`` rows into ``builder``."""
    if not rows:
        return
    ids, paths, rel_paths, artists, genres, albumartists, albums, titles, arousal, valence, *acoustics = (
        zip(*rows, strict=True))
    paths = list(map(bytes, paths))
    roots = current_roots()
    if roots is not None:  # named roots: this machine's mount points
        paths = [os.fsencode(roots.local(os.fsdecode(p))) for p in paths]
    if music_directory:
        prefix = os.fsencode(os.path.normpath(music_directory)) + b"/"
        cut = len(prefix)
        uris = [p[cut:] if p.startswith(prefix) else None for p in paths]
    else:
        uris = list(map(bytes, rel_paths))
    artists = [a or "" for a in artists]
    builder.add(
        ids=ids, paths=paths, uris=uris, artists=artists, genres=[g or "" for g in genres],
        albums=[f"{(albumartist or artist).casefold()}\0{album}" if album else ""
                for albumartist, artist, album in zip(albumartists, artists, albums, strict=True)],
        titles=[t or "" for t in titles],
        opening=np.column_stack([np.array(arousal, np.float64), np.array(valence, np.float64)]),
        acoustics=[np.array(column, np.float64) for column in acoustics],  # None → NaN
    )
