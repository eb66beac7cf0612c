"""Stage 3 of a scan: analyse files, in worker processes or in this one.

Worker processes are started with the ``spawn`` method: a pool forked after torch has started its
threads can deadlock. Each worker runs torch on one thread, so N workers use N cores without
oversubscription, and at most ``2 × jobs`` files are in flight, so memory does not grow with the size
of the library.
Results come back to the caller, which stores them: only one process ever writes the index.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np

from queueemo.errors import AudioError, QueueemoError
from queueemo.library.tags import Tags, read_tags

log = logging.getLogger(__name__)

Analyser = Callable[[str], np.ndarray]


@dataclass(frozen=True)
class Outcome:
    """What analysing one file produced: a trajectory, or the reason it failed."""

    track_id: int
    path: str
    trajectory: np.ndarray | None
    error: str | None
    tags: Tags


@dataclass(frozen=True)
class ModelAnalyser:
    """The real analyser: a clip-model backend (``queueemo.emotion.backends``) chosen by name.

    Only the name is pickled into spawn workers; each loads its backend's weights there.
    """

    model: str | None = None  # None: the default backend

    def __call__(self, path: str) -> np.ndarray:
        from queueemo.emotion.backends import get_backend

        return get_backend(self.model).analyze(path)

    def warm_up(self) -> None:
        """Load the model and the feature code now, rather than on the first file."""
        from queueemo.emotion.backends import get_backend

        get_backend(self.model).warm_up()


analyse_with_model = ModelAnalyser()


def current_model_version(model: str | None = None) -> str:
    """``<backend>/<weights version>`` of a clip model (read from its JSON: cheap)."""
    from queueemo.emotion.backends import get_backend

    return get_backend(model).version


def default_jobs() -> int:
    """One worker per CPU this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def analyse_one(track_id: int, path: str, analyse: Analyser) -> Outcome:
    """Analyse one file; an undecodable file becomes an ``Outcome`` with its error, never a raise.

    A ``ModelError`` still propagates: without a model every file would fail.
    """
    tags = read_tags(path)
    try:
        trajectory = np.asarray(analyse(path), dtype=np.float32)
    except AudioError as exc:
        return Outcome(track_id, path, None, exc.reason, tags)
    except QueueemoError:
        raise
    except Exception as exc:  # a bug or a decoder crash on one file must not stop the scan
        log.warning("unexpected error analysing %r", path, exc_info=True)
        return Outcome(track_id, path, None, f"unexpected error: {type(exc).__name__}: {exc}", tags)
    if trajectory.ndim != 2 or trajectory.shape[1] != 2 or not len(trajectory):
        return Outcome(track_id, path, None, "analysis returned no windows", tags)
    return Outcome(track_id, path, trajectory, None, tags)


def _init_worker(analyse: Analyser) -> None:
    # Ctrl-C is the parent's to handle: it stops taking results and shuts the pool down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import torch

    torch.set_num_threads(1)
    warm_up = getattr(analyse, "warm_up", None)
    if warm_up is not None:
        warm_up()


def _ready() -> None:
    """A no-op task: submitting one per worker makes the pool start them all at once."""


class Workers:
    """Where files are analysed: ``jobs`` spawn processes, or this process when ``jobs == 1``.

    ``start()`` launches the processes ahead of need, so they import torch and load the model while
    the scanner is still planning; ``run()`` starts them if that has not happened yet.
    """

    def __init__(self, analyse: Analyser, jobs: int) -> None:
        self.analyse = analyse
        self.jobs = max(1, jobs)
        self._pool: ProcessPoolExecutor | None = None

    @property
    def started(self) -> bool:
        """Whether worker processes have been launched."""
        return self._pool is not None

    def start(self) -> None:
        """Launch (and warm up) the worker processes; nothing to do in process."""
        if self.jobs == 1 or self._pool is not None:
            return
        context = multiprocessing.get_context("spawn")
        self._pool = ProcessPoolExecutor(self.jobs, mp_context=context, initializer=_init_worker,
                                         initargs=(self.analyse,))
        for _ in range(self.jobs):
            self._pool.submit(_ready)

    def run(self, tasks: Iterable[tuple[int, str]]) -> Iterator[Outcome]:
        """Outcomes of ``(track_id, path)`` tasks, in completion order, at most 2 × jobs in flight."""
        if self.jobs == 1:
            yield from self._run_here(tasks)
            return
        self.start()
        assert self._pool is not None
        pending = iter(tasks)
        in_flight: set[Future[Outcome]] = set()
        try:
            while True:
                for track_id, path in pending:
                    in_flight.add(self._pool.submit(analyse_one, track_id, path, self.analyse))
                    if len(in_flight) >= 2 * self.jobs:
                        break
                if not in_flight:
                    return
                done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        except BrokenProcessPool as exc:
            raise QueueemoError(
                "an analysis worker died (out of memory?); run the scan again with fewer --jobs"
            ) from exc
        finally:
            for future in in_flight:
                future.cancel()

    def _run_here(self, tasks: Iterable[tuple[int, str]]) -> Iterator[Outcome]:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # one job, one core: extra threads only spin on a busy machine
        try:
            for track_id, path in tasks:
                yield analyse_one(track_id, path, self.analyse)
        finally:
            torch.set_num_threads(threads)

    def close(self) -> None:
        """Stop the worker processes (files not started yet are dropped)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
