"""``queueemo scan --worker``: many processes, on any machines, analyse one shared index.

The database is the coordinator. Each worker first enqueues (discovery and classification, one
worker at a time under a database lock: new and changed files become ``pending`` rows), then claims
pending tracks one at a time with a lease (``SELECT … FOR UPDATE SKIP LOCKED``: two workers never
claim the same track), analyses, and stores the result in the same transaction that ends its claim
and counts it in ``scan_workers``. A worker killed mid-track leaves its lease behind; once it expires
another worker claims the track. A result whose claim was lost (lease expired and taken over) is
dropped, so each track is stored and counted once.

On SQLite (one machine) ``scan --worker`` is the ordinary scan with its local pool.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from queueemo.audio import decoder_identity
from queueemo.errors import DatabaseError, QueueemoError
from queueemo.library.analysis import Outcome, Workers, current_model_version, default_jobs
from queueemo.library.db import STATUS_OK, STATUS_PENDING, Base, Library, Track, is_transient
from queueemo.library.discover import resolve_roots
from queueemo.library.scanner import ScanOptions, ScanSummary, scan, store_outcome
from queueemo.library.summary import WorkerStatus

log = logging.getLogger(__name__)
_T = TypeVar("_T")

LEASE_S = 600.0  # a claim outlives any one analysis; a dead worker's claims return after this
RECONNECT_FOR_S = 600.0  # how long a worker keeps retrying while the database server is away
_ENQUEUE_LOCK = 0x71756575  # advisory lock key held while a worker discovers and classifies
_SAMPLE = 20  # indexed tracks looked for on disk to tell a wrong root mapping
FORGET_AFTER = timedelta(days=7)  # a worker not seen this long (holding no claims) leaves `status`


class ScanWorker(Base):
    """One ``scan --worker`` process and what it has done (for ``status``)."""

    __tablename__ = "scan_workers"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # host:pid
    started_at: Mapped[datetime]  # naive UTC
    last_seen: Mapped[datetime]
    analysed: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def worker_name() -> str:
    """``host:pid``, unique among the workers sharing a database (a long host name is shortened,
    never the pid: cutting the end off made two workers on one host one name)."""
    pid = f":{os.getpid()}"
    return socket.gethostname()[:64 - len(pid)] + pid


def _register(library: Library, name: str) -> None:
    """Add this worker (a reused host:pid starts from zero) and forget workers not seen for
    ``FORGET_AFTER`` that hold no claims, so ``status`` does not list every scan ever run.

    Claims already under this name are a dead predecessor's (a container restarted keeps its host
    name and pid 1): they are handed back, since this worker counted them as its own and left them.
    """
    now = _now()
    with library.session() as session:
        _hand_back(session, name)
        holding = sa.select(Track.id).where(Track.claimed_by == ScanWorker.name)
        session.execute(sa.delete(ScanWorker).where(ScanWorker.last_seen < now - FORGET_AFTER,
                                                     ~holding.exists()))
        worker = session.get(ScanWorker, name)
        if worker is None:
            session.add(ScanWorker(name=name, started_at=now, last_seen=now, analysed=0, failed=0))
        else:
            worker.started_at = worker.last_seen = now
            worker.analysed = worker.failed = 0


def _enqueue(library: Library, roots: Sequence[str], options: ScanOptions, name: str = "") -> ScanSummary:
    """Discover and classify (new and changed files become pending) under the database lock."""
    with library.exclusive(_ENQUEUE_LOCK, holder=f"queueemo scan --worker {name}".rstrip()):
        return scan(library, roots, ScanOptions(
            jobs=1, enqueue_only=True, model_version=options.model_version,
            opening_windows=options.opening_windows, closing_windows=options.closing_windows,
        ))


def _to_do(version: str, since: datetime | None = None) -> sa.ColumnElement[bool]:
    """Pending tracks, and tracks analysed by another model (they stay pickable meanwhile).

    ``since``: only those analysed before it. Workers run with different models re-analysed each
    other's results back and forth for as long as both ran; each now leaves what the other stored
    after it started.
    """
    outdated = _outdated(version)
    if since is not None:
        outdated = sa.and_(outdated, sa.or_(Track.analysed_at.is_(None), Track.analysed_at < since))
    return sa.or_(Track.status == STATUS_PENDING, outdated)


def _outdated(version: str) -> sa.ColumnElement[bool]:
    """Tracks analysed by another model or analysis format than ``version``."""
    return sa.and_(Track.status == STATUS_OK,
                   sa.or_(Track.model_version.is_(None), Track.model_version != version))


def _under_roots(library: Library, roots: Sequence[str]) -> sa.ColumnElement[bool]:
    """Tracks under ``roots`` (local folders or files), compared in their stored form (a range per
    folder; a root that is a file is its own track: `scan --worker FILE` enqueued it, then claimed
    nothing and left it pending)."""
    ranges = []
    for root in roots:
        stored = library.roots.stored(root).rstrip("/")
        ranges.append(sa.or_(sa.and_(Track.path >= stored + "/", Track.path < stored + "0"),
                             Track.path == stored))
    return sa.or_(*ranges)


def outdated_under(library: Library, version: str, roots: Sequence[str]) -> int:
    """Analysed tracks under ``roots`` (folders or files) that another model or format analysed:
    the ones a scan of ``roots`` analyses again."""
    with library.session() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(Track).where(
            _outdated(version), _under_roots(library, resolve_roots(roots)))) or 0


def claim(library: Library, name: str, version: str, lease_s: float = LEASE_S,
          roots: Sequence[str] = (), since: datetime | None = None) -> tuple[int, str] | None:
    """Claim one track to analyse that nobody holds (or whose lease expired): ``(id, path)``.

    ``None`` when there is none. With ``roots``, only a track under one of them (the files this
    worker sees); ``version`` is the model's: tracks analysed by another are claimed too (with
    ``since``, only those analysed before it).
    """
    now = _now()
    with library.session() as session:
        row = session.execute(
            sa.select(Track.id, Track.path)
            .where(_to_do(version, since),
                   sa.or_(Track.lease_until.is_(None), Track.lease_until < now),
                   _under_roots(library, roots) if roots else sa.true())
            .order_by(Track.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).first()
        if row is None:
            return None
        session.execute(sa.update(Track).where(Track.id == row.id).values(
            claimed_by=name, lease_until=now + timedelta(seconds=lease_s)))
    return row.id, row.path


def _retrying(action: Callable[[], _T]) -> _T:
    """``action()``, retried with growing pauses while the database server is unreachable.

    One warning when the server goes away and one when it is back; the retries between log at debug.
    """
    started = time.monotonic()
    delay, deadline = 0.5, started + RECONNECT_FOR_S
    lost = False
    while True:
        try:
            result = action()
        except DatabaseError as error:
            if not is_transient(error) or time.monotonic() > deadline:
                raise
            if lost:
                log.debug("database still away: %s; retrying in %.1f s", error, delay)
            else:
                log.warning("%s; retrying for up to %.0f min", error, RECONNECT_FOR_S / 60)
                lost = True
            time.sleep(delay)
            delay = min(2 * delay, 30.0)
            continue
        if lost:
            log.warning("database back after %.0f s", time.monotonic() - started)
        return result


def _left(library: Library, version: str, roots: Sequence[str], name: str = "",
          since: datetime | None = None) -> int:
    """Tracks still to analyse under ``roots``, not counting those ``name`` holds itself."""
    mine = sa.and_(Track.claimed_by.is_not(None), Track.claimed_by == name,
                   Track.lease_until.is_not(None), Track.lease_until >= _now())
    with library.session() as session:
        return session.scalar(sa.select(sa.func.count()).where(
            _to_do(version, since), _under_roots(library, roots), sa.not_(mine))) or 0


def check_mapping(library: Library, roots: Sequence[str], refusal: str = "claiming nothing") -> None:
    """Refuse (one line, before claiming anything) folders whose root mapping is missing or wrong.

    Missing: a folder without a root name while the index stores its roots by name. Wrong: a named
    folder where none of a sample of the index's tracks under it exist (the share is not mounted
    there), or one whose name the index does not know while it holds another name's files.
    """
    with library.session() as session:
        stored_roots = session.execute(sa.select(Track.root).distinct()).scalars().all()
        names = sorted({library.roots.stored(root).partition(":")[0] for root in stored_roots
                        if not library.roots.stored(root).startswith("/")})
        unnamed = [root for root in roots if library.roots.name_of(root) is None]
        if names and unnamed:
            raise QueueemoError(
                f"{unnamed[0]} has no root name, but the index stores its roots by name "
                f"({', '.join(names)}): map it in [library] root_names "
                f'(e.g. "{names[0]}={unnamed[0]}"); {refusal}'
            )
        for root in roots:
            name = library.roots.name_of(root)
            if name is not None:
                _check_named_root(library, session, root, name, names, refusal)


def _sample(session: Session, where: sa.ColumnElement[bool], size: int = _SAMPLE) -> list[str]:
    return list(session.execute(sa.select(Track.path).where(where).order_by(Track.id).limit(size))
                .scalars())


def _check_named_root(library: Library, session: Session, root: str, name: str,
                      names: Sequence[str], refusal: str) -> None:
    """Raise ``QueueemoError`` if the index's tracks under ``root`` (named ``name``) are not there."""
    sample = _sample(session, _under_roots(library, [root]))
    if sample and not any(os.path.exists(path) for path in sample):
        raise QueueemoError(
            f"root name {name!r} maps to {dict(library.roots.mounts)[name]}, but none of the index's "
            f"tracks under {root} are there (e.g. {library.roots.stored(sample[0])}): check [library] "
            f"root_names and the mount; {refusal}"
        )
    if sample or name in names:
        return
    mount = dict(library.roots.mounts)[name]
    for other in names:
        stored = f"{other}:/"
        for path in _sample(session, sa.and_(Track.path >= stored, Track.path < f"{other}:0")):
            here = mount + path[len(other) + 1:]
            if path.startswith(stored) and os.path.exists(here):
                raise QueueemoError(
                    f"{mount} is named {name!r}, but it holds the index's root {other!r} "
                    f"({path} is {here}): name it {other!r} in [library] root_names; {refusal}"
                )


def _claims(library: Library, name: str, version: str, lease_s: float,
            roots: Sequence[str], since: datetime) -> Iterator[tuple[int, str]]:
    """Tracks claimed one at a time, until none is free now (the rest may be held by others)."""
    while (task := _retrying(lambda: claim(library, name, version, lease_s, roots, since))) is not None:
        yield task


def _warn_of_other_models(library: Library, version: str, roots: Sequence[str], since: datetime) -> None:
    """Say so when other workers stored another model's analyses while this one ran."""
    with library.session() as session:
        others = session.scalar(sa.select(sa.func.count()).where(
            _outdated(version), Track.analysed_at >= since, _under_roots(library, roots))) or 0
    if others:
        log.warning("%d tracks were analysed by another model than %s by other workers meanwhile; left as "
                    "they are: run every worker with the same [emotion] model", others, version)


def work(library: Library, roots: Sequence[str], options: ScanOptions, *, lease_s: float = LEASE_S,
         name: str | None = None, progress: Callable[[int, int], None] | None = None) -> ScanSummary:
    """Run one worker: enqueue, then claim–analyse–store until nothing is pending."""
    name, since = name or worker_name(), _now()
    local = resolve_roots(roots)
    _retrying(lambda: check_mapping(library, local))
    _retrying(lambda: _register(library, name))
    summary = _retrying(lambda: _enqueue(library, local, options, name))  # a new attempt finds what is stored
    version = options.model_version or current_model_version()
    total = _retrying(lambda: _left(library, version, local, since=since))
    if progress:
        progress(0, total)
    done, poll_s = 0, min(1.0, lease_s / 4)
    jobs = options.jobs or default_jobs()  # 0: one per CPU, as for a plain scan
    with _handing_back(library, name), Workers(options.analyse, jobs) as workers:
        while True:
            # One round ends when nothing is free to claim and this worker's analyses are all stored:
            # waiting for other workers' claims inside it held finished results back, unstored.
            for outcome in workers.run(_claims(library, name, version, lease_s, local, since)):
                stored = _retrying(lambda: _finish(library, name, outcome, options, version, since))  # noqa: B023
                if stored is True:
                    summary.analysed += 1
                elif stored is False:
                    summary.failed += 1
                done += 1
                if progress:
                    progress(done, max(total, done))
            if _retrying(lambda: _left(library, version, local, name, since)) == 0:
                _retrying(lambda: _warn_of_other_models(library, version, local, since))
                return summary
            time.sleep(poll_s)  # held by others: done soon, or their lease expires and we take over


@contextmanager
def _handing_back(library: Library, name: str) -> Iterator[None]:
    """Hand this worker's claims back if it stops early (Ctrl-C, SIGTERM, an error): other workers
    waited out the whole lease (10 min) for the tracks it was analysing. ``kill -9`` still does."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(DatabaseError), library.session() as session:
            _hand_back(session, name)
        raise


def _hand_back(session: Session, name: str) -> None:
    """Release every claim held under ``name``, so other workers may take those tracks now."""
    session.execute(sa.update(Track).where(Track.claimed_by == name)
                    .values(claimed_by=None, lease_until=None))


def _finish(library: Library, name: str, outcome: Outcome, options: ScanOptions, version: str,
            since: datetime | None = None) -> bool | None:
    """End the claim and store the outcome in one transaction; ``None`` if another worker stored
    the track first.

    A claim taken over after its lease ran out still stores a result while the track is not done:
    the first result wins. Requiring the claim made two workers whose analyses outlast the lease
    take the track from each other forever, each result dropped.
    """
    with library.session() as session:
        released = session.execute(
            sa.update(Track).where(Track.id == outcome.track_id,
                                   sa.or_(Track.claimed_by == name, _to_do(version, since)))
            .values(claimed_by=None, lease_until=None)
        )
        if released.rowcount == 0:  # type: ignore[attr-defined]
            log.warning("dropped the analysis of %r: another worker stored it first (this worker's "
                        "lease on it ran out)", outcome.path)
            return None
        ok = store_outcome(session, outcome, options, version, decoder_identity())
        column = ScanWorker.analysed if ok else ScanWorker.failed
        session.execute(sa.update(ScanWorker).where(ScanWorker.name == name)
                        .values({column: column + 1, ScanWorker.last_seen: _now()}))
    return ok


def worker_status(session: Session) -> list[WorkerStatus]:
    """Every worker that has run against this index, busiest first."""
    now = _now()
    live = sa.func.sum(sa.case((Track.lease_until >= now, 1), else_=0))
    counts = {name: (int(held), total - int(held)) for name, held, total in session.execute(
        sa.select(Track.claimed_by, live, sa.func.count())
        .where(Track.claimed_by.is_not(None)).group_by(Track.claimed_by))}
    rows = session.scalars(sa.select(ScanWorker).order_by(ScanWorker.analysed.desc())).all()
    return [
        WorkerStatus(
            name=row.name, analysed=row.analysed, failed=row.failed,
            per_minute=60 * (row.analysed + row.failed)
            / max((row.last_seen - row.started_at).total_seconds(), 1.0),
            claims=counts.get(row.name, (0, 0))[0], last_seen=row.last_seen,
            expired=counts.get(row.name, (0, 0))[1],
        )
        for row in rows
    ]
