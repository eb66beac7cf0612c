"""``queueemo scan``: discover → classify → analyse → store.

1. **discover** (``discover.py``): stat every audio-named file under the roots.
2. **classify** (here, one transaction): against the index, each file is *unchanged* (same size and
   mtime, or same content after a touch), *moved* (a vanished track has its content hash: the row,
   its analysis and its id follow the file), a *duplicate* (an identical file is analysed: its
   analysis is copied), or *to analyse* (new, changed, left pending by an interrupted scan, or
   analysed by an older model). Tracks under the roots that are gone are removed. New and changed
   files are written as ``pending`` rows, so ``queueemo status`` counts them and a crash loses nothing.
3. **analyse** (``analysis.py``): in a pool of worker processes, or in process for ``jobs=1`` and for
   a handful of files. Nothing to analyse means torch is never imported.
4. **store** (here): one commit per track, so ``kill -9`` loses only the tracks in flight. A file that
   cannot be decoded is stored as ``failed`` with its reason and the decoder that tried it
   (``audio.decoder_identity()``); it is tried again when the file or the decoder changes, or on
   request (``ScanOptions.retry_failed``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Session

from queueemo.audio import WINDOW_SECONDS, decoder_identity
from queueemo.boundaries import Boundaries, boundary_emotion
from queueemo.emotion.summary import summarise
from queueemo.errors import DatabaseError
from queueemo.library.analysis import (
    Analyser,
    ModelAnalyser,
    Outcome,
    Workers,
    analyse_with_model,
    current_model_version,
    default_jobs,
)
from queueemo.library.db import (
    STATUS_FAILED,
    STATUS_OK,
    STATUS_PENDING,
    Library,
    Track,
    encode_trajectory,
)
from queueemo.library.discover import Found, discover, resolve_roots
from queueemo.library.hashing import content_hash
from queueemo.library.history import plays_follow_move

if TYPE_CHECKING:
    from queueemo.config import EmotionSettings, LibrarySettings

log = logging.getLogger(__name__)

_SUMMARY_COLUMNS = (
    "opening_arousal", "opening_valence", "closing_arousal", "closing_valence", "mean_arousal",
    "mean_valence",
)
_BOUNDARY_COLUMNS = tuple(Boundaries.COLUMNS)
# Columns copied from an analysed track to a byte-identical duplicate.
_ANALYSIS_COLUMNS = (
    "duration_s", "artist", "albumartist", "album", "title", "genre", "tracknumber", "status",
    "error", "model_version", "decoder", "analysed_at", "trajectory", *_SUMMARY_COLUMNS,
    *_BOUNDARY_COLUMNS,
)

Progress = Callable[[int, int], None]

# Up to this many files are analysed in the scanning process (when ScanOptions allow it): starting a
# pool costs each worker ~3-5 s (spawn, import torch, load the model), one file costs ~1-2 s here.
IN_PROCESS_MAX_FILES = 4
# Planning is read, then write: a concurrent scan may insert the same new paths in between.
_PLAN_ATTEMPTS = 3


@dataclass
class ScanSummary:
    """What a scan did. ``failed`` counts every undecodable file under the roots, known or new."""

    analysed: int = 0
    unchanged: int = 0
    moved: int = 0
    removed: int = 0
    failed: int = 0

    def line(self) -> str:
        """The one-line summary printed after a scan."""
        return (f"analysed {self.analysed}, unchanged {self.unchanged}, moved {self.moved}, "
                f"removed {self.removed}, failed {self.failed}")


@dataclass(frozen=True)
class ScanOptions:
    """How to scan.

    ``jobs=0`` means one worker per CPU, ``jobs=1`` analyses in this process. The window counts set
    the opening/closing means (20 windows = 10 s). ``analyse`` maps a path to an (n, 2) trajectory and
    raises ``AudioError`` for bad files; the default runs the shipped model (it must be picklable for
    worker processes, and may have a ``warm_up()`` they call at start).
    """

    jobs: int = 0
    opening_windows: int = 20
    closing_windows: int = 20
    analyse: Analyser = analyse_with_model
    # A handful of changed files are analysed in this process rather than in a pool that must start;
    # the daemon says False, so torch and the model never load into the long-running process.
    small_scans_in_process: bool = True
    # Workers fork from a forkserver that imported torch once. The daemon says False: that server
    # (~220 MB) would stay beside the long-running process after its first batch, so it spawns them.
    fork_server: bool = True
    # Try every failed file again (by default only those whose file or decoder changed).
    retry_failed: bool = False
    model_version: str | None = None  # None: ask the shipped model (only if something may need it)
    # Asked between outcomes (and while waiting for one): True ends the scan early, workers killed,
    # unfinished files left pending. The daemon passes its stop event so SIGTERM is prompt.
    should_stop: Callable[[], bool] | None = None
    # Only discover and classify (new and changed files become pending rows): ``scan --worker``.
    enqueue_only: bool = False

    @classmethod
    def from_settings(cls, library: LibrarySettings, emotion: EmotionSettings,
                      **options: object) -> ScanOptions:
        """Options from the ``[library]`` and ``[emotion]`` sections; ``options`` override the rest."""
        model = emotion.model
        return cls(jobs=library.jobs, opening_windows=library.opening_windows,
                   closing_windows=library.closing_windows, analyse=ModelAnalyser(model),
                   model_version=current_model_version(model), **options)  # type: ignore[arg-type]


@dataclass
class _Plan:
    to_analyse: list[tuple[int, str]] = field(default_factory=list)
    summary: ScanSummary = field(default_factory=ScanSummary)


def _under(path: str, roots: Sequence[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


@dataclass
class _Index:
    """The index as classification needs it: one query, no ORM objects."""

    under_roots: dict[str, sa.Row]  # path → row, for tracks under the scanned roots
    by_hash: dict[str, list[sa.Row]]  # content hash → rows, for every track


def _load_index(session: Session, roots: Sequence[str]) -> _Index:
    columns = (Track.id, Track.path, Track.size, Track.mtime_ns, Track.content_hash, Track.status,
               Track.model_version, Track.decoder)
    index = _Index({}, {})
    for row in session.execute(sa.select(*columns)):
        if _under(row.path, roots):
            index.under_roots[row.path] = row
        if row.content_hash:
            index.by_hash.setdefault(row.content_hash, []).append(row)
    return index


def _needs_analysis(row: sa.Row, model_version: str) -> bool:
    return row.status == STATUS_PENDING or (row.status == STATUS_OK and row.model_version != model_version)


def _moved_source(rows: list[sa.Row], vanished: dict[str, sa.Row], found_paths: set[str]) -> sa.Row | None:
    """A track with this content whose file is gone: under the roots, or anywhere on disk."""
    for row in rows:
        if row.path in vanished or (row.path not in found_paths and not os.path.lexists(row.path)):
            return row
    return None


def _place(track: Track, found: Found, digest: str | None) -> None:
    track.path, track.root, track.rel_path = found.path, found.root, found.rel_path
    track.size, track.mtime_ns, track.content_hash = found.size, found.mtime_ns, digest


def _classify(session: Session, found: list[Found], roots: Sequence[str],
              version_of: Callable[[], str], on_new: Callable[[int], None],
              retry: Callable[[sa.Row], bool], unreadable: Sequence[str] = ()) -> _Plan:
    """Plan the scan (see the module docstring); ``retry(row)`` says whether a failed track is tried again.

    Tracks under ``unreadable`` (folders and files discovery could not read) are neither removed nor
    taken as moved: a folder whose permissions changed is not a deleted album.

    ``on_new(n)`` is called first, before any hashing, if there are ``n > 0`` more unknown paths than
    vanished ones (a cheap guess at how many files are new rather than moved).
    """
    plan = _Plan()
    summary = plan.summary
    index = _load_index(session, roots)
    known = index.under_roots
    unknown = sum(item.path not in known for item in found)
    likely_new = unknown - (len(known) - (len(found) - unknown))
    if likely_new > 0:
        on_new(likely_new)
    new: list[Found] = []
    for item in found:
        row = known.pop(item.path, None)
        if row is None:
            new.append(item)
            continue
        if (row.size, row.mtime_ns) == (item.size, item.mtime_ns):
            if row.status == STATUS_FAILED and not retry(row):
                summary.failed += 1
            elif row.status == STATUS_FAILED or _needs_analysis(row, version_of()):
                plan.to_analyse.append((row.id, item.path))
            else:
                summary.unchanged += 1
            continue
        digest = content_hash(item.path, item.size)
        track = session.get_one(Track, row.id)
        touched = digest is not None and digest == row.content_hash and row.status == STATUS_OK
        if touched and row.model_version == version_of():
            _place(track, item, digest)  # same content, new mtime: keep the analysis
            summary.unchanged += 1
            continue
        _place(track, item, digest)
        track.status, track.error = STATUS_PENDING, None
        plan.to_analyse.append((row.id, item.path))
    vanished = known  # what is left was not found
    unseen = [path for path in vanished if _under(path, unreadable)] if unreadable else []
    for path in unseen:
        del vanished[path]
    if unseen:
        log.warning("keeping %d tracks in the index that could not be read this time", len(unseen))
    found_paths = {item.path for item in found} | set(unseen)
    added: list[Track] = []
    for item in new:
        digest = content_hash(item.path, item.size)
        same = index.by_hash.get(digest, []) if digest else []
        source = _moved_source(same, vanished, found_paths)
        if source is not None:
            same.remove(source)
            vanished.pop(source.path, None)
            log.info("moved: %r -> %r", source.path, item.path)
            moved = session.get_one(Track, source.id)
            plays_follow_move(session, (moved.root, moved.rel_path), (item.root, item.rel_path))
            _place(moved, item, digest)
            summary.moved += 1
            if source.status == STATUS_FAILED and not retry(source):
                summary.failed += 1
            elif source.status == STATUS_FAILED or _needs_analysis(source, version_of()):
                plan.to_analyse.append((source.id, item.path))
            continue
        track = Track(status=STATUS_PENDING)
        _place(track, item, digest)
        twin = next((row for row in same if row.status == STATUS_OK
                     and not _needs_analysis(row, version_of())
                     and (row.path in found_paths or os.path.exists(row.path))), None)
        if twin is not None:
            analysed = session.get_one(Track, twin.id)
            for column in _ANALYSIS_COLUMNS:
                setattr(track, column, getattr(analysed, column))
            summary.analysed += 1
        added.append(track)
    session.add_all(added)
    if vanished:
        summary.removed = _remove(session, vanished, found, roots)
    session.flush()  # gives the new rows their ids
    plan.to_analyse.extend((track.id, track.path) for track in added if track.status == STATUS_PENDING)
    # Largest files first: with several workers, the last files to finish are short ones, so no
    # worker is left alone on a long track at the end while the others idle.
    if len(plan.to_analyse) > 1:  # an unchanged rescan of a large library skips the size map
        sizes = {item.path: item.size for item in found}
        plan.to_analyse.sort(key=lambda task: (-sizes.get(task[1], 0), task[1]))
    return plan


def _remove(session: Session, vanished: dict[str, sa.Row], found: list[Found],
            roots: Sequence[str]) -> int:
    """Delete vanished tracks, except under a root that now looks empty (an unmounted disk)."""
    populated = {item.root for item in found}
    kept = [root for root in roots if os.path.isdir(root) and root not in populated]
    doomed = [row.id for path, row in vanished.items() if not _under(path, kept)]
    if len(doomed) < len(vanished):
        log.warning("%s is empty: keeping its %d tracks in the index (unmounted?)",
                    ", ".join(kept), len(vanished) - len(doomed))
    for start in range(0, len(doomed), 500):
        session.execute(sa.delete(Track).where(Track.id.in_(doomed[start : start + 500])))
    return len(doomed)


def store_outcome(session: Session, outcome: Outcome, options: ScanOptions, model_version: str,
           decoder: str) -> bool:
    """Write one outcome; ``True`` if it was analysed, ``False`` if it failed."""
    tags = outcome.tags
    values: dict[str, object] = {
        "artist": tags.artist, "albumartist": tags.albumartist, "album": tags.album,
        "title": tags.title, "genre": tags.genre, "tracknumber": tags.tracknumber,
        "analysed_at": datetime.now(UTC).replace(tzinfo=None), "model_version": model_version,
        "decoder": decoder,
    }
    if outcome.trajectory is None:
        values.update(status=STATUS_FAILED, error=outcome.error, trajectory=None,
                      duration_s=tags.duration_s, **dict.fromkeys(_SUMMARY_COLUMNS),
                      **dict.fromkeys(_BOUNDARY_COLUMNS))
    else:
        values.update(status=STATUS_OK, error=None, trajectory=encode_trajectory(outcome.trajectory),
                      duration_s=tags.duration_s or len(outcome.trajectory) * WINDOW_SECONDS,
                      **_summaries(outcome, options))
    updated = session.connection().execute(_store_statement(), {
        **values, "which_id": outcome.track_id, "which_path": outcome.path})
    if updated.rowcount == 0:
        log.info("%r left the index while it was analysed; dropping its result", outcome.path)
    return outcome.trajectory is not None


def _summaries(outcome: Outcome, options: ScanOptions) -> dict[str, float | None]:
    """Opening/closing emotion inside the audible boundaries, and the boundary columns themselves."""
    assert outcome.trajectory is not None
    if outcome.boundaries is None:  # an analyser that measured no boundaries: raw first/last windows
        return {**summarise(outcome.trajectory, options.opening_windows, options.closing_windows),
                **dict.fromkeys(_BOUNDARY_COLUMNS)}
    inside = outcome.boundaries.resized(options.opening_windows, options.closing_windows)
    return {**boundary_emotion(outcome.trajectory, inside), **outcome.boundaries.columns()}


@cache
def _store_statement() -> sa.Update:
    """One UPDATE with bound parameters, built once: building statements dominated the store cost.

    The path condition drops a result whose file was moved or removed while it was analysed.
    """
    columns = ("artist", "albumartist", "album", "title", "genre", "tracknumber", "analysed_at",
               "model_version", "decoder", "status", "error", "trajectory", "duration_s",
               *_SUMMARY_COLUMNS, *_BOUNDARY_COLUMNS)
    table = Track.__table__
    return (
        sa.update(table)
        .where(table.c.id == sa.bindparam("which_id"), table.c.path == sa.bindparam("which_path"))
        .values({name: sa.bindparam(name, type_=table.c[name].type) for name in columns})
    )


def scan(library: Library, roots: Iterable[str | os.PathLike[str]], options: ScanOptions | None = None,
         *, progress: Progress | None = None) -> ScanSummary:
    """Bring the index up to date with the audio files under ``roots``; returns what was done.

    ``progress(done, total)`` is called once the work is known and after each analysed file.
    Raises ``QueueemoError`` for a missing root or a root whose name mapping is missing or wrong
    (``claims.check_mapping``), ``DatabaseError``/``ModelError`` for fatal problems;
    a bad audio file is recorded, never raised.
    """
    from queueemo.library.claims import check_mapping  # claims builds on this module

    options = options or ScanOptions()
    resolved = resolve_roots(roots)
    check_mapping(library, resolved, "scanning nothing")  # before anything is written
    started = time.monotonic()
    unreadable: list[str] = []
    found = list(discover(resolved, unreadable))
    log.info("found %d audio files in %.1f s", len(found), time.monotonic() - started)
    version = options.model_version

    def version_of() -> str:
        nonlocal version
        if version is None:
            version = current_model_version()
        return version

    def retry(row: sa.Row) -> bool:
        return options.retry_failed or row.decoder != decoder_identity()

    jobs = options.jobs or default_jobs()
    small_here = options.small_scans_in_process

    def start_early(likely_new: int) -> None:
        # Many new files will need the workers: start them now, they warm up while we plan.
        if not small_here or likely_new > IN_PROCESS_MAX_FILES:
            workers.start()

    with Workers(options.analyse, jobs, options.fork_server) as workers:
        for attempt in range(1, _PLAN_ATTEMPTS + 1):
            try:
                with library.session() as session, session.no_autoflush:
                    plan = _classify(session, found, resolved, version_of,
                                     on_new=(lambda _n: None) if options.enqueue_only else start_early,
                                     retry=retry, unreadable=unreadable)
                break
            except DatabaseError as error:
                # Another scan of these files (the daemon's watcher, a second `queueemo scan`) added
                # some of the same new tracks between our read and our write: read again.
                if attempt == _PLAN_ATTEMPTS or not isinstance(error.__cause__, sa.exc.IntegrityError):
                    raise
                log.info("another scan added some of these files meanwhile; planning again")
        summary = plan.summary
        if options.enqueue_only:
            return summary
        total = len(plan.to_analyse)
        log.info("%s; %d to analyse", summary.line(), total)
        if progress:
            progress(0, total)
        if small_here and not workers.started and total <= IN_PROCESS_MAX_FILES:
            workers.jobs = 1  # a few changed files: quicker here than in a pool that must start
        # Nothing to do: no run, so torch is never imported.
        outcomes = workers.run(plan.to_analyse, options.should_stop) if total else iter(())
        for done, outcome in enumerate(outcomes, start=1):
            with library.session() as session:
                if store_outcome(session, outcome, options, version_of(), decoder_identity()):
                    summary.analysed += 1
                else:
                    summary.failed += 1
                    log.info("failed: %r: %s", outcome.path, outcome.error)
            if progress:
                progress(done, total)
            if done < total and options.should_stop is not None and options.should_stop():
                log.info("scan stopped after %d of %d files; the rest stay pending", done, total)
                break
    return summary
