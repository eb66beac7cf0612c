"""Stage 3 of a scan: analyse files, in worker processes or in this one.

Worker processes are forked from a ``forkserver`` that has imported what the backend runs on (torch
for v2 and seed; numpy and scipy only for v2-lite) and the analysis code but run no torch operation (a
process forked after torch has started its threads can deadlock): the workers share one torch import
instead of paying ~2 CPU-s each, and a later pool (the daemon's next batch) starts in milliseconds.
Where there is no forkserver, workers are spawned. Each worker runs torch and BLAS on one thread, so
N workers use N cores without oversubscription, and at most ``2 × jobs``
files are in flight, so memory does not grow with the size of the library.
Results come back to the caller, which stores them: only one process ever writes the index.
Workers die with the process that started them (a parent-death signal on Linux, a watching thread
elsewhere), and ``Workers.close()`` terminates them rather than waiting for the files in flight.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import select
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, CancelledError, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from queueemo.audio import WindowObserver
from queueemo.boundaries import Boundaries, BoundaryAccumulator
from queueemo.errors import AudioError, QueueemoError
from queueemo.library.tags import Tags, read_tags
from queueemo.threads import analysis_threads, set_analysis_threads

log = logging.getLogger(__name__)

MAX_JOBS_PER_CPU = 2



class Analyser(Protocol):
    """Audio file → (n, 2) trajectory, showing each decoded block to ``observe`` (``AudioError`` if bad)."""

    def __call__(self, path: str, *, observe: WindowObserver | None = None) -> np.ndarray: ...


STOP_POLL_S = 0.25  # how often a waiting scan asks ``should_stop``


@dataclass(frozen=True)
class Outcome:
    """What analysing one file produced: a trajectory and its audible boundaries, or why it failed."""

    track_id: int
    path: str
    trajectory: np.ndarray | None
    error: str | None
    tags: Tags
    boundaries: Boundaries | None = None


@dataclass(frozen=True)
class ModelAnalyser:
    """The real analyser: a clip-model backend (``queueemo.emotion.backends``) chosen by name.

    Only the name is pickled into spawn workers; each loads its backend's weights there.
    """

    model: str | None = None  # None: the default backend

    def __call__(self, path: str, *, observe: WindowObserver | None = None) -> np.ndarray:
        from queueemo.emotion.backends import get_backend

        return get_backend(self.model).analyze(path, observe=observe)

    def warm_up(self) -> None:
        """Load the model and the feature code now, rather than on the first file."""
        from queueemo.emotion.backends import get_backend

        get_backend(self.model).warm_up()

    @property
    def uses_torch(self) -> bool:
        """Whether the backend runs torch (so its thread count is set in workers)."""
        from queueemo.emotion.backends import get_backend

        return get_backend(self.model).uses_torch

    @property
    def preload(self) -> tuple[str, ...]:
        """What a forkserver imports for the backend's workers."""
        from queueemo.emotion.backends import get_backend

        return get_backend(self.model).preload


analyse_with_model = ModelAnalyser()


# What a scan stores besides the model's output: the decode's downmix and the audible boundaries and
# their acoustics. Raised whenever that changes, so every track is analysed again once, as after a
# model change. 1: onset densities (migration 0006); 2: phase-inverted channels no longer cancel in
# the mono downmix; brightness is the median frame's centroid; onsets over every bin, relative threshold.
ANALYSIS_FORMAT = 2


def current_model_version(model: str | None = None) -> str:
    """What analyses a track now, stored with it: ``<backend>/<weights version>+a<ANALYSIS_FORMAT>``
    (read from the weights' JSON: cheap). A track stored with another value is analysed again."""
    from queueemo.emotion.backends import get_backend

    return f"{get_backend(model).version}+a{ANALYSIS_FORMAT}"


def default_jobs() -> int:
    """One worker per CPU this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def worker_count(jobs: int) -> int:
    """Worker processes for ``jobs`` (at least one), capped at twice this machine's CPUs with a warning:
    each worker holds its own model (100–250 MB), and more of them only share the same cores."""
    cpus = default_jobs()
    most = MAX_JOBS_PER_CPU * cpus
    if jobs > most:
        log.warning("%d worker processes asked for; using %d, twice this machine's %d CPUs (each worker "
                    "holds its own model)", jobs, most, cpus)
        return most
    return max(1, jobs)


def analyse_one(track_id: int, path: str, analyse: Analyser) -> Outcome:
    """Analyse one file; an undecodable file becomes an ``Outcome`` with its error, never a raise.

    A ``ModelError`` still propagates: without a model every file would fail.
    """
    tags = read_tags(path)
    boundaries = BoundaryAccumulator()  # measured on the same decode as the emotion
    try:
        trajectory = np.asarray(analyse(path, observe=boundaries.add), dtype=np.float32)
    except AudioError as exc:
        return Outcome(track_id, path, None, exc.reason, tags)
    except QueueemoError:
        raise
    except Exception as exc:  # a bug or a decoder crash on one file must not stop the scan
        log.warning("unexpected error analysing %r", path, exc_info=True)
        return Outcome(track_id, path, None, f"unexpected error: {type(exc).__name__}: {exc}", tags)
    if trajectory.ndim != 2 or trajectory.shape[1] != 2 or not len(trajectory):
        return Outcome(track_id, path, None, "analysis returned no windows", tags)
    return Outcome(track_id, path, trajectory, None, tags, boundaries.result())


# prctl(2) option: the signal this process gets when the thread that started it exits.
_PR_SET_PDEATHSIG = 1
# How often a worker without pidfd checks that its owner is still there.
_PARENT_POLL_SECONDS = 0.5
# How long close() lets terminated workers take to exit before killing them.
_TERMINATE_GRACE_SECONDS = 2.0


# Imported once by the forkserver, before any worker is forked from it (no torch operation runs there),
# besides the backend's own ``preload``; an analyser that names none gets torch. scipy's FFT serves the
# boundaries of every backend.
FORKSERVER_PRELOAD = ("scipy.fft", "queueemo.library.analysis", "queueemo.emotion.backends")
DEFAULT_PRELOAD = ("torch",)


def worker_context(fork_server: bool = True,
                   preload: tuple[str, ...] = DEFAULT_PRELOAD) -> multiprocessing.context.BaseContext:
    """How workers start: forked from a forkserver that preloaded ``preload`` (torch for the torch
    backends), or spawned where there is none or ``fork_server`` is False (the server lives as long as
    its owner)."""
    if not fork_server or "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([*preload, *FORKSERVER_PRELOAD])  # no effect once the server runs
    return context


def start_worker_server(analyse: Analyser, fork_server: bool = True) -> None:
    """Start the forkserver now, importing what ``analyse``'s backend preloads, so that workers forked
    later start at once; nothing where workers are spawned. Returns without waiting for it."""
    context = worker_context(fork_server, getattr(analyse, "preload", DEFAULT_PRELOAD))
    if context.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        log.debug("starting the workers' forkserver")
        forkserver.ensure_running()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _watch_parent(owner: int) -> None:
    """Exit this worker as soon as ``owner``, the process whose pool it serves, is gone (``kill -9`` too).

    ``owner`` comes from the owner itself: the worker's parent may be a forkserver, and a spawned
    worker runs this after seconds of imports, when ``os.getppid()`` may name whoever adopted it.
    A forkserver outlives its owner while any worker holds the pipe that tells it to exit, so each
    worker watches the owner itself (a pidfd, readable once the owner has exited), and also dies with
    the process that started it (Linux's parent-death signal, sent when the *thread* that started the
    worker ends: a ``Workers`` is started and closed on one thread, ``scan()`` does both).
    """
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    try:
        handle: int | None = os.pidfd_open(owner)
    except ProcessLookupError:  # gone already
        os._exit(1)
    except (AttributeError, OSError):  # no pidfd (not Linux ≥ 5.3): poll
        handle = None

    def watch() -> None:
        if handle is not None:
            select.select([handle], [], [])
        else:
            while _alive(owner):
                threading.Event().wait(_PARENT_POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="queueemo-owner-watch", daemon=True).start()


def _init_worker(analyse: Analyser, owner: int) -> None:
    _watch_parent(owner)
    # Ctrl-C is the parent's to handle: it stops taking results and shuts the pool down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    set_analysis_threads(torch=getattr(analyse, "uses_torch", True))  # N workers on N cores, 1 thread each
    warm_up = getattr(analyse, "warm_up", None)
    if warm_up is not None:
        warm_up()


def _ready() -> None:
    """A no-op task: submitting one per worker makes the pool start them all at once."""


class Workers:
    """Where files are analysed: ``jobs`` worker processes, or this process when ``jobs == 1``.

    ``start()`` launches the processes ahead of need, so they import the backend and load the model while
    the scanner is still planning; ``run()`` starts them if that has not happened yet.
    """

    def __init__(self, analyse: Analyser, jobs: int, fork_server: bool = True) -> None:
        self.analyse = analyse
        self.jobs = worker_count(jobs)
        self.fork_server = fork_server
        self._pool: ProcessPoolExecutor | None = None
        self._not_ours: set[multiprocessing.process.BaseProcess] = set()

    @property
    def started(self) -> bool:
        """Whether worker processes have been launched."""
        return self._pool is not None

    def start(self) -> None:
        """Launch the workers (spawn) or their forkserver, which imports the backend meanwhile; nothing
        to do in process. Returns at once: forking from the server waits until it has imported the
        backend, so forkserver workers are forked by the first ``run()``."""
        if self.jobs == 1 or self._pool is not None:
            return
        context = worker_context(self.fork_server, getattr(self.analyse, "preload", DEFAULT_PRELOAD))
        self._not_ours = set(multiprocessing.active_children())
        self._pool = ProcessPoolExecutor(self.jobs, mp_context=context, initializer=_init_worker,
                                         initargs=(self.analyse, os.getpid()))
        if context.get_start_method() == "forkserver":
            start_worker_server(self.analyse, self.fork_server)
            return
        for _ in range(self.jobs):
            self._pool.submit(_ready)

    def run(self, tasks: Iterable[tuple[int, str]],
            should_stop: Callable[[], bool] | None = None) -> Iterator[Outcome]:
        """Outcomes of ``(track_id, path)`` tasks, in completion order, at most 2 × jobs in flight.

        ``should_stop`` is polled while waiting; when it says so, the outcomes end early (``close()``
        then terminates the workers, and the files in flight stay pending for the next scan).
        """
        if self.jobs == 1:
            yield from self._run_here(tasks)
            return
        self.start()
        pool = self._pool
        assert pool is not None
        pending = iter(tasks)
        in_flight: set[Future[Outcome]] = set()
        try:
            while True:
                for track_id, path in pending:
                    in_flight.add(pool.submit(analyse_one, track_id, path, self.analyse))
                    if len(in_flight) >= 2 * self.jobs:
                        break
                if not in_flight:
                    return
                done, in_flight = wait(in_flight, timeout=STOP_POLL_S if should_stop else None,
                                       return_when=FIRST_COMPLETED)
                if should_stop is not None and should_stop():
                    return
                for future in done:
                    yield future.result()
        except (BrokenProcessPool, CancelledError, RuntimeError) as exc:
            if self._pool is not pool:
                raise QueueemoError("analysis stopped: the workers were closed") from exc
            if isinstance(exc, BrokenProcessPool):
                raise QueueemoError(
                    "an analysis worker died (out of memory?); run the scan again with fewer --jobs"
                ) from exc
            raise
        finally:
            for future in in_flight:
                future.cancel()

    def _run_here(self, tasks: Iterable[tuple[int, str]]) -> Iterator[Outcome]:
        with analysis_threads(torch=getattr(self.analyse, "uses_torch", True)):
            for track_id, path in tasks:
                yield analyse_one(track_id, path, self.analyse)

    def close(self) -> None:
        """Terminate the worker processes now: files in flight and not started yet are dropped.

        Called when a scan ends, finished or not (Ctrl-C, SIGTERM, a stop request), so stopping
        never waits for a long file to finish; a closed ``Workers`` can be started again.
        """
        pool, self._pool = self._pool, None
        if pool is None:
            return
        pool.shutdown(wait=False, cancel_futures=True)
        # The pool's processes: every multiprocessing child started since start() (public API only).
        processes = [p for p in multiprocessing.active_children() if p not in self._not_ours]
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(_TERMINATE_GRACE_SECONDS)
            if process.is_alive():
                process.kill()
                process.join()
        pool.shutdown(wait=True)

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
